"""mosaicrec: a multimodal recommendation engine.

Encoders embed item text, images and audio; fusion combines them; a Qdrant-backed store holds
the vectors; the engine turns user histories into ranked, explained recommendations.
"""

__version__ = "0.1.0"
