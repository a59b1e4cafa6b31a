"""What the tuners and the tasks share: how a trial ends early, how its outcome is told, the names.

A task raises :class:`TrialPruned` from a model's ``report`` callback when the coordinator says the
trial's pruner stops it; the trial's row then gets status ``pruned``. A trial's outcome is an
:data:`Outcome`; ``recorded(number)`` (:data:`Recorded`) gives the outcome of a trial whose row is
already in the results store, or None, which is how a driver settles trials a killed run left
running.
"""

from __future__ import annotations

from collections.abc import Callable


class TrialPruned(Exception):
    """Stops a trial early; ``value`` is the last validation accuracy reported before it stopped."""

    def __init__(self, value: float | None = None) -> None:
        super().__init__(f"pruned (last validation accuracy {value})")
        self.value = value


#: What a trial scored: its validation accuracy, or, in a study of two objectives (``--objectives``),
#: its validation accuracy and its cost; None where it has none.
Value = float | tuple[float, ...] | None
#: ``(status, value)``; status a :class:`~digitbench.benchmark.store.Status`.
Outcome = tuple[str, Value]
Recorded = Callable[[int], Outcome | None]

#: The tuners that are Optuna studies (the tuners a run may name are :data:`~.settings.TUNERS`).
OPTUNA_TUNERS = ("optuna", "random")
