"""Report figures: one function per figure, each writes a PNG atomically and closes its figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from digitbench.common.atomic import atomic_path
from digitbench.reports.stats import N_CLASSES, best_at, confusion_counts  # noqa: E402


def save_png(fig: Figure, path: Path) -> Path:
    """Save ``fig`` to ``path`` through a temp file in the same folder, then close the figure."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, title: str, path: Path) -> Path:
    """Draw the 10x10 confusion counts (true digits on rows, predicted on columns) to a PNG."""
    counts = confusion_counts(y_true, y_pred)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images")
    threshold = counts.max() / 2 if counts.max() else 1
    for i in range(N_CLASSES):
        for j in range(N_CLASSES):
            n = int(counts[i, j])
            if n == 0:
                color = "0.75"
            elif n > threshold:
                color = "white"
            else:
                color = "black" if i == j else "firebrick"
            weight = "bold" if (i != j and n > 0) else "normal"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=9, color=color,
                    fontweight=weight)
    ticks = np.arange(N_CLASSES)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("Predicted digit")
    ax.set_ylabel("True digit")
    ax.set_title(title)
    return save_png(fig, path)


@dataclass(frozen=True)
class FrontPanel:
    """One panel of :func:`accuracy_fronts`: its x label; per contender its points ``(cost, mean
    accuracy, low, high, primary)`` (fractions); and the envelope's points ``(cost, accuracy)``."""

    xlabel: str
    lines: dict[str, list[tuple[float, float, float, float, bool]]]
    envelope: list[tuple[float, float]]


def accuracy_fronts(panels: list[FrontPanel], title: str, path: Path) -> Path:
    """Test accuracy against a cost (log axis), one panel per cost: each contender's points joined by
    a line, cheapest first, with their interval bars (primary finals the larger markers), and the
    envelope across contenders as a dashed black step line. One legend above the panels names the
    contenders: labels beside the points overlapped where contenders cost and scored alike."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False,
                             layout="constrained")
    names = sorted({name for panel in panels for name in panel.lines})
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for ax, panel in zip(axes.flat, panels, strict=True):
        x_all = np.maximum([p[0] for points in panel.lines.values() for p in points], 1e-6)
        for name, points in panel.lines.items():
            cost, mean, low, high, primary = (np.asarray(v) for v in zip(*sorted(points), strict=True))
            x, y = np.maximum(cost.astype(float), 1e-6), 100 * mean.astype(float)
            ax.errorbar(x, y, yerr=[y - 100 * low.astype(float), 100 * high.astype(float) - y],
                        color=colors[name], lw=1.2, elinewidth=0.8, capsize=2, zorder=3)
            on = primary.astype(bool)
            ax.scatter(x[on], y[on], s=40, color=colors[name], edgecolor="black", zorder=4)
            ax.scatter(x[~on], y[~on], s=14, color=colors[name], zorder=4)
        if len(panel.envelope) > 1:
            ex, ey = zip(*sorted(panel.envelope), strict=True)
            ax.step(np.maximum(ex, 1e-6), 100 * np.asarray(ey), where="post", color="black", ls="--",
                    lw=1.2, alpha=0.7, zorder=2)
        ax.set_xscale("log")
        ax.set_xlim(x_all.min() / 2, x_all.max() * 2)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel("Test accuracy, % (mean over seeds, 95% bars)")
        ax.grid(True, which="major", alpha=0.3)
    handles = [matplotlib.lines.Line2D([], [], color=colors[n], marker="o", ms=5, lw=1.2, label=n)
               for n in names]
    handles.append(matplotlib.lines.Line2D([], [], color="black", ls="--", lw=1.2, alpha=0.7,
                                           label="envelope across models"))
    fig.suptitle(title)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8,
               frameon=False)
    return save_png(fig, path)


#: Accuracy points a tuning-curve panel spans at the least.
MIN_SPAN_POINTS = 3.0


def tuning_curves(curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]], title: str,
                  path: Path, ylabel: str = "Best val. accuracy so far, %") -> Path:
    """Small multiples, one per model: best-so-far validation accuracy (or another rising fraction,
    ``ylabel``: the hypervolume) against cumulative tuning CPU-seconds, one line per tuner.
    ``curves[model][tuner]`` holds one ``(cumulative_cpu_s, best_so_far)`` per study: one study is
    drawn as its steps; several as their median with a band from the lowest to the highest."""
    n = len(curves)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    tuners = sorted({t for by_tuner in curves.values() for t in by_tuner})
    colors = {t: f"C{i}" for i, t in enumerate(tuners)}
    for ax, (model, by_tuner) in zip(axes.flat, curves.items(), strict=False):
        for tuner, studies in by_tuner.items():
            if len(studies) == 1:
                x, best = studies[0]
                ax.step(x, 100 * best, where="post", color=colors[tuner], lw=1.6)
                ax.plot(x, 100 * best, "o", ms=2.5, color=colors[tuner])
                continue
            # From the moment every study has finished a trial: each is then a rising step line,
            # and so are their median and extremes.
            grid = np.unique(np.concatenate([x for x, _ in studies]))
            grid = grid[grid >= max(x[0] for x, _ in studies)]
            found = 100 * best_at(studies, grid)
            middle, low, high = np.median(found, 0), found.min(0), found.max(0)
            ax.fill_between(grid, low, high, step="post", color=colors[tuner], alpha=0.18, lw=0)
            ax.step(grid, middle, where="post", color=colors[tuner], lw=1.6)
        low, high = ax.get_ylim()
        if high - low < MIN_SPAN_POINTS:  # a 0.05-point step must not fill the panel like a jump
            middle = (high + low) / 2  # the window kept within 0-100%, shifted where it crosses
            bottom = min(max(middle - MIN_SPAN_POINTS / 2, 0.0), 100.0 - MIN_SPAN_POINTS)
            ax.set_ylim(bottom, bottom + MIN_SPAN_POINTS)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("Cumulative tuning CPU-s", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    # One legend for all panels, above them: inside a panel it would hide a line's points.
    handles = [matplotlib.lines.Line2D([], [], color=colors[t], lw=1.6, label=t) for t in tuners]
    fig.suptitle(title, y=1.0)
    fig.legend(handles=handles, loc="upper center", ncol=len(tuners), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.97))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_png(fig, path)


def learning_curves(curves: dict[str, list[float]], ylabel: str, title: str, path: Path) -> Path:
    """Accuracy by epoch, one line per labelled curve, on one axes."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, values in curves.items():
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, 100 * np.asarray(values, dtype=float), marker="o", ms=3, label=label)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel)
    longest = max((len(v) for v in curves.values()), default=1)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlim(0.5, longest + 0.5)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save_png(fig, path)


def accuracy_against_size(curves: dict[str, tuple[list[int], list[float], list[float], list[float], Any]],
                          title: str, path: Path) -> Path:
    """Test accuracy against training-set size (log axis): per label (sizes, mean accuracy, the low
    and high ends of its 95% interval, a fitted law with ``predict(n)`` of the error, or None), the
    means with their band and the fitted curve dashed."""
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for label, (sizes, means, lows, highs, law) in curves.items():
        n, mean, low, high = (np.asarray(v, dtype=float) for v in (sizes, means, lows, highs))
        line, = ax.plot(n, 100 * mean, marker="o", ms=3, label=label)
        ax.fill_between(n, 100 * low, 100 * high, color=line.get_color(), alpha=0.18)
        if law is not None:
            grid = np.geomspace(n.min(), n.max(), 100)
            ax.plot(grid, 100 * (1 - np.asarray(law.predict(grid))), ls="--", lw=1, color=line.get_color())
    _size_axis(ax, [n for sizes, *_ in curves.values() for n in sizes])
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="mean over seeds, 95% band (see caption); dashed: a·n^-b + c",
              title_fontsize=7)
    ax.set_title(title)
    return save_png(fig, path)


def _size_axis(ax: Any, sizes: list[int]) -> None:
    """A log x axis of training-set sizes, ticked at the measured ones (no crowded minor labels)."""
    ax.set_xscale("log")
    ticks = sorted(set(sizes))
    ax.set_xticks(ticks, [f"{n:,}" for n in ticks], rotation=45 if len(ticks) > 6 else 0, fontsize=8)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("Training images (log scale)")


def cost_against_size(curves: dict[str, tuple[list[int], list[float], Any]], title: str, path: Path) -> Path:
    """A cost against training-set size on log-log axes: per label (sizes, mean cost, a fitted law
    with ``predict(n)``, or None), the measured means and the fitted line dashed."""
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for label, (sizes, means, law) in curves.items():
        n, mean = np.asarray(sizes, dtype=float), np.asarray(means, dtype=float)
        line, = ax.plot(n, mean, marker="o", ms=3, ls="none", label=label)
        if law is not None:
            grid = np.geomspace(n.min(), n.max(), 50)
            ax.plot(grid, np.asarray(law.predict(grid)), ls="--", lw=1, color=line.get_color())
    _size_axis(ax, [n for sizes, *_ in curves.values() for n in sizes])
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("Fit CPU-seconds (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="exponent e of k·n^e [95%]", title_fontsize=7)
    ax.set_title(title)
    return save_png(fig, path)


def heat_map(values: np.ndarray, rows: list[str], columns: list[str], title: str, path: Path) -> Path:
    """A (rows x columns) grid of numbers (e.g. accuracy in %), coloured and written in each cell."""
    fig, ax = plt.subplots(figsize=(0.62 * len(columns) + 2.4, 0.42 * len(rows) + 1.8))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    middle = np.nanmean(values)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=6.5,
                color="white" if value < middle else "black")
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def reliability_diagram(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str,
                        path: Path) -> Path:
    """Accuracy against confidence per bin (``curves[label] = (count, confidence, accuracy)``), the
    diagonal of perfect calibration dashed, and below it how many images fell in each bin."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.6, 5.6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    width = 1 / max(len(next(iter(curves.values()))[0]), 1)
    for k, (label, (counts, confidence, accuracy)) in enumerate(curves.items()):
        filled = counts > 0
        top.plot(confidence[filled], accuracy[filled], marker="o", ms=3, label=label)
        centres = (np.arange(len(counts)) + 0.5) * width
        share = counts / max(counts.sum(), 1)
        bottom.bar(centres + (k - 0.5) * width / 2, share, width=width / 2, label=label)
    top.set_ylabel("Accuracy in the bin")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.grid(True, alpha=0.3)
    top.legend(fontsize=8)
    top.set_title(title, fontsize=9)
    bottom.set_xlabel("Confidence (the top probability), 15 bins")
    bottom.set_ylabel("Share of images")
    bottom.set_yscale("log")
    return save_png(fig, path)


def digit_gallery(images: np.ndarray, titles: list[str], title: str, path: Path,
                  cols: int = 8) -> Path:
    """A grid of (k, 28, 28) digit images, each with its title, in the given order."""
    k = len(images)
    cols = max(1, min(cols, k))
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 1.35 * rows + 0.5), squeeze=False)
    vmax = 255 if k and images.max() > 1 else 1   # images stored as 0..1 would otherwise look blank
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, text in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(text, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def runs_side_by_side(points: dict[str, dict[str, tuple[float, float]]], title: str, path: Path) -> Path:
    """Accuracy against fit CPU-seconds for several runs: ``points[run][model] = (cpu_s, accuracy)``.
    One marker shape per run, a grey line joining each model across runs, labels at the first run."""
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    markers = "osD^vP*X"
    models = list(dict.fromkeys(m for by_model in points.values() for m in by_model))
    for model in models:
        xy = [by_model[model] for by_model in points.values() if model in by_model]
        if len(xy) > 1:
            ax.plot([max(x, 1e-3) for x, _ in xy], [100 * y for _, y in xy], color="0.7", lw=1, zorder=1)
        x, y = xy[0]
        ax.annotate(model, (max(x, 1e-3), 100 * y), xytext=(5, 4), textcoords="offset points", fontsize=8)
    for i, (run, by_model) in enumerate(points.items()):
        x = [max(c, 1e-3) for c, _ in by_model.values()]
        y = [100 * a for _, a in by_model.values()]
        ax.scatter(x, y, s=48, marker=markers[i % len(markers)], zorder=3, label=run)
    ax.set_xscale("log")
    ax.set_xlabel("Fit CPU-seconds (mean over seeds, log scale)")
    ax.set_ylabel("Test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)
