"""mosaicrec.evaluation."""
