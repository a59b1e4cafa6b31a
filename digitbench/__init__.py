"""digitbench: what each handwritten-digit model buys in accuracy and costs in CPU time.

One import name for everything public::

    import digitbench
    run_dir = digitbench.run(dataset="mnist-5k", models="logreg,svm-rbf")
    finals = digitbench.load_results(run_dir, kind="final")

Plug-in authors write ``from digitbench import DigitModel, Digits, register``; the modules under
``digitbench.benchmark``, ``digitbench.models`` and ``digitbench.reports`` are the implementation.
"""

from digitbench.benchmark.commands.api import (
    RunStopped,
    load_results,
    log_to_mlflow,
    run,
    show_versions,
    write_report,
)
from digitbench.benchmark.provenance import digitbench_version
from digitbench.common.errors import InputError, NoSpaceLeft
from digitbench.models.base import DigitModel, Digits, ReportCallback
from digitbench.models.registry import register

__version__ = digitbench_version()

__all__ = ["DigitModel", "Digits", "InputError", "NoSpaceLeft", "ReportCallback", "RunStopped",
           "__version__", "load_results", "log_to_mlflow", "register", "run", "show_versions",
           "write_report"]
