"""digitbench from Python: run a benchmark, then read its final results as a pandas DataFrame.

Run it with ``python docs/examples/three_lines.py``. The run folder is ``runs/three-lines``, or the
folder named by the environment variable ``DIGITBENCH_EXAMPLE_OUT``; running it again resumes the
run (nothing finished is trained twice) and prints the same table.
"""

import os

import digitbench

# digitbench runs its jobs in worker processes that import this file again: in a script, the
# calls go under this guard (as with any Python multiprocessing).
if __name__ == "__main__":
    out = os.environ.get("DIGITBENCH_EXAMPLE_OUT", "runs/three-lines")

    run_dir = digitbench.run(dataset="mnist-5k", models="logreg", tuner="none", out=out, resume=True)
    finals = digitbench.load_results(run_dir, kind="final")
    print(finals[["dataset", "model", "seed", "test_accuracy", "fit_cpu_s"]].to_string(index=False))
