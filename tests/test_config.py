"""Every typed config and request fails with mosaicrec's own errors, never pydantic's."""

from __future__ import annotations

import pytest

from mosaicrec.encoders import EncoderSpec, FusionConfig
from mosaicrec.engine import RecommenderConfig, SearchRequest, UserModelConfig
from mosaicrec.errors import ConfigError, MosaicError, RequestError
from mosaicrec.indexing.catalogue import ColumnMapping
from mosaicrec.indexing.indexer import IndexerConfig
from mosaicrec.indexing.stores import Filter, StoreConfig


@pytest.mark.parametrize(
    "build",
    [
        lambda: EncoderSpec(family="hf-text", tower="text", model="m", batch_size=0),
        lambda: FusionConfig(weights={"text": -1.0}),
        lambda: ColumnMapping(payload={"year": "date"}),
        lambda: IndexerConfig(batch_siz=3),
        lambda: UserModelConfig(max_interests="many"),
        lambda: RecommenderConfig.model_validate({"nope": 1}),
    ],
)
def test_invalid_configs_raise_config_error(build) -> None:
    with pytest.raises(ConfigError, match="invalid"):
        build()


def test_invalid_requests_raise_request_error() -> None:
    with pytest.raises(RequestError, match="exactly one"):
        SearchRequest(text="a", item_id="b")
    with pytest.raises(RequestError, match="Filter"):
        Filter.model_validate({"must": [{"field": "x", "match": {"a": 1}}]})
    assert issubclass(RequestError, MosaicError)


def test_secrets_stay_out_of_error_messages() -> None:
    with pytest.raises(ConfigError) as info:
        StoreConfig(backend="edge", url="http://127.0.0.1:6333", api_key="s3cret-key")
    assert "s3cret-key" not in str(info.value)
    assert "s3cret-key" not in repr(
        StoreConfig(backend="qdrant", url="http://h", api_key="s3cret-key")
    )
