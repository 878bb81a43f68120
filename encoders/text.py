"""Sentence encoder over any Hugging Face transformer: mean pooling over the attention mask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mosaicrec.encoders.base import TorchEncoder
from mosaicrec.encoders.loading import load_pretrained, seeded
from mosaicrec.encoders.registry import EncoderSpec
from mosaicrec.errors import EncodeError

__all__ = [
    "TokenizedTextTower",
    "TextEncoder",
    "create_text_encoder",
    "compose_item_text",
    "ITEM_TEXT_TEMPLATE",
]

# How item fields become one string. Empty fields are dropped with their punctuation.
ITEM_TEXT_TEMPLATE = "{title}. {description} Tags: {tags}."


def compose_item_text(
    title: str | None = None,
    description: str | None = None,
    tags: Sequence[str] | str | None = None,
) -> str:
    """Assemble ``title. description Tags: a, b.``, leaving out whatever is missing."""
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace("|", ",").split(",")]
    elif tags is not None:
        tags = list(tags)  # numpy arrays and tuples from Parquet / JSONL
    parts = []
    if title and str(title).strip():
        parts.append(str(title).strip().rstrip(".") + ".")
    if description and str(description).strip():
        parts.append(str(description).strip())
    tag_list = [str(t).strip() for t in (tags or []) if str(t).strip()]
    if tag_list:
        parts.append("Tags: " + ", ".join(tag_list) + ".")
    return " ".join(parts)


def check_text(item: Any, key: Any) -> str:
    """Shared by every text tower: a non-empty ``str``, or a typed error naming the item."""
    if not isinstance(item, str):
        raise EncodeError(f"expected text (str), got {type(item).__name__}", item=key)
    if not item.strip():
        raise EncodeError("empty text", item=key)
    return item


class TokenizedTextTower:
    """Shared by the text towers that take raw strings (MiniLM, CLAP text): validation,
    length-based batching and padded tokenisation. Needs ``tokenizer``, ``max_length`` and
    ``device`` on the encoder."""

    tokenizer: Any
    max_length: int
    device: Any

    def prepare(self, item: Any, key: Any = None) -> str:
        return check_text(item, key)

    def _cost(self, prepared: str) -> int:
        return len(prepared)

    def _tokenize(self, prepared: list[str]) -> Any:
        return self.tokenizer(
            prepared,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)


class TextEncoder(TokenizedTextTower, TorchEncoder):
    """``AutoModel`` + tokenizer; the sentence vector is the mask-weighted mean of token states."""

    modality = "text"

    def __init__(self, model: Any, tokenizer: Any, *, name: str, max_length: int, **kw: Any):
        super().__init__(name=name, dim=model.config.hidden_size, **kw)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    def _forward(self, prepared: list[str]) -> Any:
        batch = self._tokenize(prepared)
        states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def create_text_encoder(spec: EncoderSpec) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    if spec.weights == "random":
        from mosaicrec.encoders.tiny import TINY_BERT, tiny_tokenizer

        with seeded(spec.seed):
            model = BertModel(
                BertConfig(**(spec.architecture or TINY_BERT)), add_pooling_layer=False
            )
        tokenizer = tiny_tokenizer()
    else:
        what = "text encoder"
        opts = {"allow_download": spec.allow_download, "cache_dir": spec.cache_dir}
        model = load_pretrained(AutoModel.from_pretrained, spec.model, what=what, **opts)
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, spec.model, what=what, **opts)
    max_length = spec.max_length or min(int(tokenizer.model_max_length or 512), 512)
    return TextEncoder(
        model,
        tokenizer,
        name=spec.display_name,
        max_length=max_length,
        device=spec.device,
        batch_size=spec.batch_size,
        precision=spec.precision,
    )
