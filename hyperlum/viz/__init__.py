"""Figures, the report and the interactive explorer."""
