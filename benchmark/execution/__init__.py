"""Execution: the plan, the coordinator (the one job loop), the executors and the tasks they run."""
