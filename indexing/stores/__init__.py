"""mosaicrec.indexing.stores."""
