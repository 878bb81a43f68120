"""mosaicrec.serving."""
