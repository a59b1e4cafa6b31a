"""digitbench: what each handwritten-digit model buys in accuracy and costs in CPU time.

One import name for everything public::

    import digitbench
    run_dir = digitbench.run(dataset="mnist-5k", models="logreg,svm-rbf")
    finals = digitbench.load_results(run_dir, kind="final")

Plug-in authors write ``from digitbench import DigitModel, Digits, register``.
"""

from importlib.metadata import PackageNotFoundError, version

from digitbench.benchmark.api import RunStopped, load_results, run, show_versions, write_report
from digitbench.models.base import DigitModel, Digits
from digitbench.models.errors import InputError
from digitbench.models.registry import register

try:
    __version__ = version("digitbench")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["DigitModel", "Digits", "InputError", "RunStopped", "__version__", "load_results",
           "register", "run", "show_versions", "write_report"]
