"""mosaicrec.data."""
