"""digitbench's runner: CLI, datasets, timing, results store and the job loop."""
