"""The Keras backend of a run (TensorFlow by default, PyTorch or JAX on request) and its threads.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so :func:`configure_backend` runs at
process start, after :func:`benchmark.execution.timing.configure_threads` and before anything imports Keras.
:func:`configure_runtime` does all of it for a :class:`common.runtime.KerasRuntime`, the value the
model receives too. The backends other than TensorFlow are optional installs:
``pip install 'digitbench[torch]'`` or ``'digitbench[jax]'``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from digitbench.benchmark.execution.timing import configure_threads
from digitbench.common.errors import InputError
from digitbench.common.runtime import BACKENDS, KerasRuntime, use

#: The module each backend imports, and the extra that installs it.
_MODULES = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}
_INSTALL = {"tensorflow": "pip install tensorflow-cpu", "torch": "pip install 'digitbench[torch]'",
            "jax": "pip install 'digitbench[jax]'"}


def loaded_backend() -> str | None:
    """The backend of the Keras already imported in this process, or None."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return str(keras.backend.backend())
    except AttributeError:  # a stand-in module (tests), or Keras half imported
        return None


def configure_backend(backend: str, threads: int) -> None:
    """Make ``backend`` the Keras backend of this process, with its thread pools at ``threads``.

    Raises :class:`InputError` when the backend is not installed, or when Keras is already loaded
    with another backend (the choice cannot change inside a process).
    """
    if backend not in BACKENDS:
        raise InputError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    loaded = loaded_backend()
    if loaded is not None and loaded != backend:
        raise InputError(f"--backend {backend}: Keras is already loaded with the {loaded} backend in "
                         "this process; start a new process")
    if importlib.util.find_spec(_MODULES[backend]) is None:
        raise InputError(f"--backend {backend}: {_MODULES[backend]} is not installed "
                         f"({_INSTALL[backend]})")
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        _jax_threads(threads)
    elif backend == "torch":
        _torch_threads(threads)
    # TensorFlow: models.lenet.import_keras applies TF_NUM_INTRAOP/INTEROP_THREADS (set by
    # configure_threads) before the first op.


def _jax_threads(threads: int) -> None:
    """XLA's CPU client sizes its pools from the cores it may use; one thread is a flag."""
    flags = os.environ.get("XLA_FLAGS", "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    elif threads < (cores or threads) and hasattr(os, "sched_setaffinity"):
        # XLA has no thread-count flag for its CPU runtime: keep the process on `threads` cores.
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    os.environ["XLA_FLAGS"] = flags.strip()


def _torch_threads(threads: int) -> None:
    """PyTorch's intra-op (OpenMP) and inter-op pools; the inter-op one only before first use."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already started in this process: keep what is in force
        pass


def backend_version(backend: str) -> str | None:
    """The installed version of the backend's package (``tensorflow-cpu`` or ``tensorflow``)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ("tensorflow-cpu", "tensorflow") if backend == "tensorflow" else (backend,)
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def configure_runtime(runtime: KerasRuntime) -> None:
    """Thread pools and Keras backend of this process, and ``runtime`` in force for its models
    (``common.runtime.current``), before anything runs: the coordinator's at start, and every
    worker's before its first task. ``runtime.threads`` None leaves the thread counts as they are."""
    if runtime.threads is not None:
        configure_threads(runtime.threads)
    configure_backend(runtime.backend, runtime.threads or os.cpu_count() or 1)
    use(runtime)


def configure_process(config) -> None:  # config: benchmark.config.RunConfig
    """:func:`configure_runtime` for the run's settings (``config.runtime``)."""
    configure_runtime(config.runtime)
