"""A trained model on disk: a versioned folder beside the collection.

    <models dir>/CURRENT                the version served (replaced atomically)
    <models dir>/<version>/manifest.json what was trained, on what, with which settings, how well
    <models dir>/<version>/*.npy|*.npz  EASE, ALS and content-map arrays; sequence/ (safetensors)

The manifest records the collection and a fingerprint of its content spaces: loading a model
for another collection, or for a collection whose encoders changed, is refused with a message
that says what differs, because its item rows and content map would silently mean other things.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.models.als import ALSConfig, ALSModel
from mosaicrec.engine.models.blend import BlendConfig
from mosaicrec.engine.models.content_map import ContentMap
from mosaicrec.engine.models.data import ItemIndex, PositiveRule
from mosaicrec.engine.models.ease import EASEConfig, EASEModel
from mosaicrec.engine.models.trained import BEHAVIOUR_SPACES, TrainedModel
from mosaicrec.errors import ModelMismatchError, StoreError

__all__ = ["Manifest", "schema_fingerprint", "save_model", "load_model", "current_version"]

FORMAT_VERSION = 1


class Manifest(StrictModel):
    """Everything needed to trust (or refuse) a trained model."""

    format_version: int = FORMAT_VERSION
    version: str
    created_at: float
    collection: str
    schema_fingerprint: str
    data_fingerprint: str
    counts: dict[str, int] = Field(default_factory=dict)  # users, items, events
    positives: PositiveRule = Field(default_factory=PositiveRule)
    ease: EASEConfig | None = None
    ease_all: EASEConfig | None = None  # EASE over every event
    als: ALSConfig | None = None
    sequence: dict[str, Any] | None = None  # the sequence model's config
    sequence_positives_only: bool = False
    content_map: dict[str, Any] | None = None  # chosen space and ridge
    blend: BlendConfig = Field(default_factory=BlendConfig)
    validation: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)
    device: str = "cpu"


def schema_fingerprint(schema: Any) -> str:
    """Hash of the collection's content spaces (behaviour spaces excluded: training adds them)."""
    spaces = {name: space.model_dump(mode="json") for name, space in schema.vectors.items()
              if name not in BEHAVIOUR_SPACES}
    return hashlib.sha256(json.dumps(spaces, sort_keys=True).encode()).hexdigest()[:16]


def new_version() -> str:
    """UTC time to the millisecond and the pid: two trainings in one second get two versions."""
    now = time.time()
    return (time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}"
            + f"-{os.getpid() % 10000:04d}")


def save_model(model: TrainedModel, manifest: Manifest, models_dir: Path) -> Path:
    """Write ``<models_dir>/<version>/`` then point CURRENT at it (readers never see half)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / manifest.version
    tmp = models_dir / f".{manifest.version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "items.json").write_text(json.dumps(model.items.ids))
    for ease in (model.ease, model.ease_all):
        if ease is not None:
            ease.save(tmp)
    if model.als is not None:
        model.als.save(tmp)
    if model.sequence is not None:
        model.sequence.save(tmp / "sequence")
    if model.content_map is not None:
        model.content_map.save(tmp)
    (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    os.replace(tmp, final)
    pointer = models_dir / "CURRENT.tmp"
    pointer.write_text(manifest.version)
    os.replace(pointer, models_dir / "CURRENT")
    model.manifest = manifest
    return final


def current_version(models_dir: Path) -> str | None:
    pointer = models_dir / "CURRENT"
    return pointer.read_text().strip() if pointer.is_file() else None


def load_model(models_dir: Path, *, collection: str, schema: Any,
               version: str | None = None) -> TrainedModel:
    """Load a version (default: CURRENT) and check it belongs to this collection and schema."""
    version = version or current_version(models_dir)
    if version is None:
        raise StoreError(f"no trained model in {models_dir}; run `mosaicrec train` first")
    folder = models_dir / version
    try:
        manifest = Manifest.model_validate_json((folder / "manifest.json").read_text())
        ids = json.loads((folder / "items.json").read_text())
    except (OSError, ValueError) as err:
        raise StoreError(f"trained model {folder} is unreadable: {err}") from err
    if manifest.collection != collection:
        raise ModelMismatchError(
            f"trained model {version} was trained for collection {manifest.collection!r}, not "
            f"{collection!r}; train one for this collection with `mosaicrec train`")
    fingerprint = schema_fingerprint(schema)
    if manifest.schema_fingerprint != fingerprint:
        raise ModelMismatchError(
            f"trained model {version} was trained on collection {collection!r} with other "
            f"content vectors (schema fingerprint {manifest.schema_fingerprint}, now "
            f"{fingerprint}): the collection was re-created or its encoders changed; retrain")
    ease = EASEModel.load(folder, manifest.ease) if manifest.ease else None
    ease_all = EASEModel.load(folder, manifest.ease_all) if manifest.ease_all else None
    als = ALSModel.load(folder, manifest.als) if manifest.als else None
    sequence = None
    if manifest.sequence is not None:
        from mosaicrec.engine.models.sequence import SequenceModel

        sequence = SequenceModel.load(folder / "sequence")
    content_map = ContentMap.load(folder) if manifest.content_map else None
    return TrainedModel(ItemIndex(ids), manifest.positives, manifest.blend, ease=ease,
                        ease_all=ease_all, als=als,
                        sequence=sequence, sequence_positives_only=manifest.sequence_positives_only,
                        content_map=content_map, manifest=manifest)
