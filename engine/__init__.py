"""mosaicrec.engine."""
