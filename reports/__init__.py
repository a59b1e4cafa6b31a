"""Everything that turns a run folder's results into report.md and its figures."""
