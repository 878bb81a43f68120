"""Behaviour models learned from events, the content map for new items, the blender, and the
trained-model artefact that the recommender serves."""
