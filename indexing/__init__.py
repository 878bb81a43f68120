"""mosaicrec.indexing."""
