"""Searches that cannot match are errors (issue 14, defect 9), and truncated audio is refused
(defect 10). The service calls ``check_filter`` / ``check_space_has_vectors`` before a search,
so REST, gRPC and the CLI give the same errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reliability_support import SAMPLE_MAPPING, messy_catalogue

from mosaicrec.encoders.media import load_audio
from mosaicrec.errors import MediaDecodeError, RequestError
from mosaicrec.indexing.catalogue import ColumnMapping
from mosaicrec.indexing.checks import check_filter, check_space_has_vectors
from mosaicrec.indexing.indexer import IndexerConfig, index_catalogue
from mosaicrec.indexing.stores import Condition, Filter, StoreConfig


@pytest.fixture(scope="module")
def text_only_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checks")
    catalogue = messy_catalogue(folder / "cat")
    mapping = ColumnMapping.model_validate({**SAMPLE_MAPPING, "image": None, "audio": None})
    store, _, _ = index_catalogue(catalogue, StoreConfig(backend="qdrant", path=":memory:"),
                                  "tiny", mapping=mapping, device="cpu",
                                  indexer=IndexerConfig(progress=False))
    yield store
    store.close()


def test_filter_on_an_unknown_field_names_it_and_lists_the_fields(text_only_store) -> None:
    schema = text_only_store.schema
    flt = Filter(must=[Condition(field="genre", match="drama"),
                       Condition(field="category", match="city")],
                 must_not=[Condition(field="colour", match="red")])
    with pytest.raises(RequestError) as err:
        check_filter(schema, flt)
    message = str(err.value)
    assert "'colour', 'genre'" in message and "'category'" in message and "'mood'" in message
    for fine in (Filter(must=[Condition(field="category", match="city")]),
                 Filter(must=[Condition(field="title", match="x")]),
                 {"should": [Condition(field="year", gte=2000)]}, None):
        check_filter(schema, fine)
    with pytest.raises(RequestError, match="has_vector for 'als'"):
        check_filter(schema, Filter(must=[Condition(has_vector="als")]))
    # what the service knows of (e.g. its own fields) can be allowed
    check_filter(schema, Filter(must=[Condition(field="genre", match="x")]),
                 extra_fields={"genre"})


def test_search_in_a_space_without_vectors_is_an_error(text_only_store) -> None:
    check_space_has_vectors(text_only_store, "text")
    check_space_has_vectors(text_only_store, "fused")
    with pytest.raises(RequestError, match="no item of the collection has a 'audio' vector") as err:
        check_space_has_vectors(text_only_store, "audio")
    assert "'fused', 'text'" in str(err.value)
    with pytest.raises(RequestError, match="unknown vector space 'sound'"):
        check_space_has_vectors(text_only_store, "sound")


def test_payload_fields_are_recorded_with_the_collection(text_only_store) -> None:
    fields = set(text_only_store.schema.payload_fields)
    assert {"category", "mood", "year", "tags", "title", "text", "item_id"} <= fields


def _tone(seconds: float = 2.0, sr: int = 22050) -> np.ndarray:
    return (0.4 * np.sin(np.arange(int(seconds * sr)) * 0.07)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_truncated_compressed_audio_is_refused(fmt: str, tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(), 22050, format=fmt)
    whole = buf.getvalue()
    assert len(load_audio(whole, "whole", target_sr=22050, max_seconds=5)) > 0
    for cut in (0.5, 0.77):
        with pytest.raises(MediaDecodeError, match="truncated") as err:
            load_audio(whole[: int(len(whole) * cut)], "cut", target_sr=22050, max_seconds=5)
        assert err.value.item == "cut"
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MediaDecodeError, match="truncated"):
        load_audio(path, target_sr=22050, max_seconds=5)


@pytest.mark.realdata
def test_real_audio_files_are_not_taken_for_truncated(shared_data: Path) -> None:
    files = sorted((shared_data / "flickr-1k" / "audio").glob("*.mp3"))[:40]
    files += sorted((shared_data / "audio-clips").glob("*.ogg"))
    files += sorted((shared_data / "spoken-digits").glob("*.wav"))[:20]
    assert files
    for path in files:
        load_audio(path, target_sr=16000, max_seconds=1)
