"""Tiny configurations of the real architectures, for tests and offline demos.

They have the same module structure as the production models (BERT, open_clip ViT CLIP, CLAP
with HTSAT) at a fraction of the width and depth, initialised from a seed. Their vectors carry
no meaning: they exercise the code paths, not the semantics.
"""

from __future__ import annotations

import string
from typing import Any

__all__ = ["TINY_BERT", "TINY_CLIP", "TINY_CLAP", "tiny_tokenizer"]

TINY_BERT: dict[str, Any] = {
    "vocab_size": 256,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
}

TINY_CLIP: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}

# Filled in by the audio encoder: a small ClapConfig (text + HTSAT audio) that runs in ms.
TINY_CLAP: dict[str, Any] = {
    "projection_dim": 32,
    "text_config": {
        "vocab_size": 256,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 520,
    },
    # HTSAT at toy size: 16 mel bins, a 64x64 "image" (spec_size 64, freq_ratio 4), two Swin
    # stages of one block each. Input frames must fit spec_size * freq_ratio = 256, so its
    # feature extractor widens the hop (see encoders.audio.feature_extractor_for).
    "audio_config": {
        "num_mel_bins": 16,
        "spec_size": 64,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "window_size": 4,
        "depths": [1, 1],
        "num_attention_heads": [1, 2],
        "patch_embeds_hidden_size": 16,
        "hidden_size": 32,
        "num_hidden_layers": 2,
    },
}


def tiny_tokenizer(model_max_length: int = 128) -> Any:
    """A character-level WordPiece tokenizer built in memory: no files, no downloads.

    Its 200-odd tokens fit the tiny configs' ``vocab_size`` of 256.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [c for c in string.printable if not c.isspace()]
    vocab = {tok: i for i, tok in enumerate(specials + chars + [f"##{c}" for c in chars])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
