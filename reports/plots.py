"""Report figures: one function per figure, each writes a PNG atomically and closes its figure."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports.stats import N_CLASSES, confusion_counts  # noqa: E402


def save_png(fig: Figure, path: Path) -> Path:
    """Save ``fig`` to ``path`` through a temp file in the same folder, then close the figure."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
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
