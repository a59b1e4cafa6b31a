"""What a run's finals are expected to cost, printed before it starts: each final's fit CPU-s from
the size of its training set and its model's measured rate, summed.

A rate is the law ``k * n^e`` (per epoch for models that train in epochs) the learning-curves report
fitted to a model's fit CPU-s with its defaults on official MNIST (``--preset scaling``, see
benchmarks/RESULTS.md). It holds on the CPU named in :data:`MEASURED_ON`; another CPU, other
parameters (wider networks, a larger C) or another dataset cost otherwise, so the figure is a
forecast to plan by, not a bound. Models without a rate (plug-ins) are named instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from digitbench.benchmark.execution.contender import Contender


@dataclass(frozen=True)
class Rate:
    """Fit CPU-s = ``k * n**e`` (times the epochs where ``per_epoch``) for ``n`` training images."""

    k: float
    e: float
    per_epoch: bool = False

    def cpu_s(self, n: int, epochs: int | None) -> float:
        return self.k * n ** self.e * ((epochs or 1) if self.per_epoch else 1)


#: Where the rates were measured: the learning curves of ``digitbench run --preset scaling`` on
#: 2026-12-02 (benchmarks/RESULTS.md), fitted to the sizes from 4,000 images up, where the cost is.
MEASURED_ON = "a 2-core AMD EPYC with AVX-512, 2 workers of 1 thread"

#: Fit CPU-s laws of the built-in models with their defaults on official MNIST (LeNets: per epoch).
RATES: dict[str, Rate] = {
    "logreg": Rate(1.30e-4, 1.00),
    "linear-svm": Rate(5.07e-7, 1.61),
    "svm-rbf": Rate(3.77e-8, 2.11),
    # the LeNets' laws were fitted with the first convolution padded, no moving average and no
    # augmentation; the variants' defaults since (unpadded, averaged, augmented) scale k by the fit
    # CPU-s of such a recipe over those settings' in one side-by-side run (2026-12-03,
    # benchmarks/RESULTS.md "Each variant's defaults, chosen with a moving average"): 183.4 / 242.3
    # for ReLU, 175.9 / 239.3 for tanh
    "lenet-relu": Rate(2.86e-4 * 183.4 / 242.3, 0.97, per_epoch=True),
    "lenet-tanh": Rate(6.50e-4 * 175.9 / 239.3, 0.90, per_epoch=True),
}


def training_images(c: Contender, size: int | None, target: bool) -> int:
    """How many images a final of ``c`` trains on: its subset's size, else the whole training part
    (validation included, unless finals are timed to a target and watch it)."""
    if size is not None:
        return size
    return len(c.split.train) + (0 if target else len(c.split.val))


def expected_finals(contenders: Iterable[Contender], target: bool) -> tuple[float, list[str]]:
    """(Expected fit CPU-s of every final still to run, the models without a rate), with each
    contender's defaults and pinned parameters (what tuning will choose is not known yet)."""
    total, unknown = 0.0, []
    for c in contenders:
        rate = RATES.get(c.entry.name)
        if rate is None:
            if c.finals and c.entry.name not in unknown:
                unknown.append(c.entry.name)
            continue
        epochs = {**c.entry.defaults(), **c.pinned}.get("epochs")
        total += sum(rate.cpu_s(training_images(c, f.train_size, target), epochs) for f in c.finals)
    return total, unknown


def describe(contenders: list[Contender], target: bool, slots: int) -> str | None:
    """The plan's line about what its finals are expected to cost; None with no final to run."""
    total, unknown = expected_finals(contenders, target)
    if not total and not unknown:
        return None
    line = (f"expected: about {total:,.0f} fit CPU-s of finals, {total / 60 / max(slots, 1):,.0f} min "
            f"with {slots} job(s) at once, from rates measured on {MEASURED_ON}")
    if unknown:
        line += f"; {', '.join(unknown)}: no measured rate, not counted"
    return line
