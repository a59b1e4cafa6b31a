"""Datasets: spec -> validated, cached Split; readers for IDX, CSV and pictures."""
