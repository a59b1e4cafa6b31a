"""How Keras runs in this process: backend, threads, steps per execution and op determinism.

One frozen value, :class:`KerasRuntime`, carries these from the run's settings to the model: the
runner builds it from its flags (``RunConfig.runtime``), applies its process-wide parts at process
start (``benchmark.execution.backends.configure_runtime``), and hands it to the model class
(``LeNet.prepare(runtime)``). Each default is written here, once. Keras picks its backend and
TensorFlow sizes its thread pools once per process, so a process has one runtime in force:
:func:`use` sets it and :func:`current` reads it (the defaults until something sets it).

This module is the lowest layer: it imports nothing from ``benchmark`` or ``reports``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The Keras backends a run can use; the first is the default.
BACKENDS = ("tensorflow", "torch", "jax")


@dataclass(frozen=True)
class KerasRuntime:
    """The Keras settings of a process.

    ``threads`` None leaves TensorFlow's thread pools as the environment sizes them
    (``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``, else every core).
    ``steps_per_execution``: Keras training steps per call into the backend (the same steps as 1,
    so the same weights, with less per-step overhead); the torch backend always runs 1.
    """

    backend: str = BACKENDS[0]
    threads: int | None = None
    steps_per_execution: int = 16
    deterministic: bool = False  # TensorFlow op determinism: same seed and threads, same results

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads: expected at least 1, got {self.threads}")
        if self.steps_per_execution < 1:
            raise ValueError(f"steps_per_execution: expected at least 1, got {self.steps_per_execution}")

    def steps_for(self, backend: str) -> int:
        """Training steps per backend call under ``backend`` (Keras' loaded one): 1 on torch, whose
        trainer runs one step at a time."""
        return 1 if backend == "torch" else self.steps_per_execution


_current = KerasRuntime()


def current() -> KerasRuntime:
    """The runtime in force in this process (the defaults until :func:`use` sets one)."""
    return _current


def use(runtime: KerasRuntime) -> None:
    """Put ``runtime`` in force in this process, for every Keras model trained from now on."""
    global _current
    if not isinstance(runtime, KerasRuntime):
        raise TypeError(f"expected a KerasRuntime, got {type(runtime).__name__}")
    _current = runtime
