"""Writing a trained model's item vectors into the collection, and keeping them current.

Each behaviour space (``als``, ``sequence``) becomes a named vector scored by dot product, so
candidate retrieval with a user's state is one Qdrant search at any catalogue size. Items the
models know get their trained vectors; items they do not know get the ALS factor the content
map predicts from their content, and the payload flag ``behaviour: "mapped"`` (``"trained"``
otherwise), which the new-items candidate source filters on.
"""

from __future__ import annotations

from collections.abc import Sequence

from mosaicrec.engine.models.trained import BEHAVIOUR_SPACES, TrainedModel
from mosaicrec.engine.retrieval import NEW_ITEM_FIELD
from mosaicrec.indexing.stores.base import VectorSpace, VectorStore
from mosaicrec.indexing.vectors import ItemVectors

__all__ = ["catalogue_vectors", "publish_vectors", "sync_items"]


def catalogue_vectors(store: VectorStore, spaces: Sequence[str]) -> ItemVectors:
    """The collection's content vectors in ``spaces`` (every item, sorted by id)."""
    return ItemVectors.read(store, [s for s in spaces if s in store.schema.vectors])


def publish_vectors(store: VectorStore, model: TrainedModel, content: ItemVectors) -> None:
    """Add (or redefine) the behaviour spaces and write every item's vectors and flag; drop
    a behaviour space an earlier model published and this one has not (stale vectors)."""
    for name in BEHAVIOUR_SPACES:
        space = store.schema.vectors.get(name)
        if name not in model.spaces and space is not None and \
                space.encoder == f"mosaicrec-{name}":
            store.drop_vector_space(name)
    for name in model.spaces:
        dim = model.als.item_vectors.shape[1] if name == "als" else \
            model.sequence.item_vectors.shape[1]  # type: ignore[union-attr]
        store.add_vector_space(name, VectorSpace(dim=dim, encoder=f"mosaicrec-{name}",
                                                 distance="dot"))
    store.add_payload_index(NEW_ITEM_FIELD, "keyword")
    sync_items(store, model, content.ids, content)
    store.optimize()


def sync_items(store: VectorStore, model: TrainedModel, ids: Sequence[str],
               content: ItemVectors | None = None) -> None:
    """Write the behaviour vectors and flag of ``ids`` (e.g. items upserted after training)."""
    ids = list(ids)
    if not ids or not model.spaces:
        return
    space = model.content_map.space if model.content_map is not None else None
    if content is None and space is not None:
        content = ItemVectors.read_ids(store, ids, [space])
    by_id = content.by_id(space) if content is not None and space in content.spaces else {}
    for name, (names, matrix) in model.behaviour_vectors(ids, by_id).items():
        for start in range(0, len(names), 1000):
            store.update_vectors(name, names[start:start + 1000], matrix[start:start + 1000])
    trained = [i for i in ids if model.is_known(i)]
    mapped = [i for i in ids if not model.is_known(i) and i in by_id]
    for flag, group in (("trained", trained), ("mapped", mapped)):
        for start in range(0, len(group), 1000):
            store.set_payload(group[start:start + 1000], {NEW_ITEM_FIELD: flag})
