"""The one search-space language: each model declares its hyperparameters once, every tuner reads it.

A model's ``search_space(space)`` calls ``space.int``, ``space.float`` and ``space.choice`` and
returns the resulting values (define-by-run, as in Optuna). What those calls return depends on the
adapter passed in:

* :class:`OptunaSpace` asks an Optuna trial (``trial.suggest_*``);
* :class:`KerasTunerSpace` asks a keras-tuner ``HyperParameters`` (``hp.Int/Float/Choice``);
* :class:`FixedSpace` returns given values, else the model's defaults (refits, tests, ``--params``);
* :class:`PinnedSpace` wraps another adapter and keeps some dimensions at given values;
* :class:`DescribeSpace` records the declared dimensions (listing, reports, checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Int:
    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1

    def describe(self) -> str:
        return f"int {self.low}..{self.high}" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class Float:
    name: str
    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"float {self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class Choice:
    name: str
    options: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.options))


Dimension = Int | Float | Choice


class Space(ABC):
    """What a model's ``search_space`` receives; subclasses decide where values come from."""

    def int(self, name: str, low: int, high: int, *, log: bool = False, step: int = 1) -> int:
        if low > high or (log and low < 1):
            raise ValueError(f"{name}: bad int range {low}..{high} (log={log})")
        return self.suggest(Int(name, low, high, log, step))

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        if low > high or (log and low <= 0):
            raise ValueError(f"{name}: bad float range {low}..{high} (log={log})")
        return self.suggest(Float(name, low, high, log))

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        if not options:
            raise ValueError(f"{name}: a choice needs at least one option")
        return self.suggest(Choice(name, tuple(options)))

    @abstractmethod
    def suggest(self, dimension: Dimension) -> Any:
        """The value of ``dimension`` for this trial, refit or description."""


class OptunaSpace(Space):
    """Values suggested by an ``optuna.Trial``."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def suggest(self, dimension: Dimension) -> Any:
        d = dimension
        if isinstance(d, Int):
            return self.trial.suggest_int(d.name, d.low, d.high, log=d.log, step=d.step)
        if isinstance(d, Float):
            return self.trial.suggest_float(d.name, d.low, d.high, log=d.log)
        return self.trial.suggest_categorical(d.name, list(d.options))


class KerasTunerSpace(Space):
    """Values from a ``keras_tuner.HyperParameters``, which registers each dimension on first use."""

    def __init__(self, hp: Any) -> None:
        self.hp = hp

    def suggest(self, dimension: Dimension) -> Any:
        d = dimension
        sampling = "log" if getattr(d, "log", False) else "linear"
        if isinstance(d, Int):
            step = None if d.log else d.step
            return self.hp.Int(d.name, d.low, d.high, step=step, sampling=sampling)
        if isinstance(d, Float):
            return self.hp.Float(d.name, d.low, d.high, sampling=sampling)
        return self.hp.Choice(d.name, list(d.options))


class FixedSpace(Space):
    """Given values where there are some, else the defaults (the model's own)."""

    def __init__(self, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.values, self.defaults = values, defaults

    def suggest(self, dimension: Dimension) -> Any:
        return self.values.get(dimension.name, self.defaults.get(dimension.name))


class PinnedSpace(Space):
    """``inner`` for every dimension but the pinned ones, which keep their given value.

    Pinned are the variant's fixed parameters and the user's ``--epochs``/``--params``: a tuner never
    sees them, so it spends no trials on them.
    """

    def __init__(self, inner: Space, pinned: Mapping[str, Any]) -> None:
        self.inner, self.pinned = inner, pinned

    def suggest(self, dimension: Dimension) -> Any:
        if dimension.name in self.pinned:
            return self.pinned[dimension.name]
        return self.inner.suggest(dimension)


class DescribeSpace(Space):
    """Records the dimensions a model declares; returns each range's low end or first option."""

    def __init__(self) -> None:
        self.dimensions: dict[str, Dimension] = {}

    def suggest(self, dimension: Dimension) -> Any:
        self.dimensions[dimension.name] = dimension
        return dimension.options[0] if isinstance(dimension, Choice) else dimension.low


def dimensions(model_cls: Any) -> dict[str, Dimension]:
    """The dimensions ``model_cls.search_space`` declares, by name."""
    space = DescribeSpace()
    model_cls.search_space(space)
    return space.dimensions
