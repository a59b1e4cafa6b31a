"""A split's test images under the ``--corruptions`` (:mod:`benchmark.data.corruptions`), made once
and cached like the datasets: keyed by a hash of the test images themselves, the corruption and its
seed, so a changed dataset or corruption makes a new file and an unchanged one is read back."""

from __future__ import annotations

import functools
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from digitbench.benchmark.data import corruptions
from digitbench.benchmark.data.datasets import Split, cached
from digitbench.models.base import Digits

#: The seed every corruption is drawn with (the rows record it in ``corrupt_test``).
CORRUPTION_SEED = 0
#: Bump when a corruption changes what it does: older cached files are then not read.
CORRUPTIONS_VERSION = 1


def corrupted_tests(split: Split, names: tuple[str, ...], cache_dir: Path) -> dict[str, Digits]:
    """``name -> the test part of split under that corruption`` (labels unchanged), in ``names``
    order, each made once per machine; one progress line per corruption made."""
    test = split.test
    content = hashlib.sha256(np.ascontiguousarray(test.images).tobytes()).hexdigest()[:16]
    found = {}
    for k, name in enumerate(names, start=1):
        started, made = time.perf_counter(), []
        arrays = cached(Path(cache_dir) / "corrupted", f"test-{name}",
                        [content, name, CORRUPTION_SEED, CORRUPTIONS_VERSION],
                        functools.partial(_build, test, name, made))
        if made:
            print(f"corrupted {split.dataset}'s {len(test):,} test images: {name} ({k}/{len(names)}, "
                  f"{time.perf_counter() - started:.1f} s, cached)", file=sys.stderr, flush=True)
        found[name] = Digits(arrays["test_images"], arrays["test_labels"])
    return found


def _build(test: Digits, name: str, made: list[str]) -> dict[str, np.ndarray]:
    made.append(name)  # so the caller knows it was made, not read back
    return {"test_images": corruptions.corrupt(test.images, name, CORRUPTION_SEED),
            "test_labels": test.labels.astype(np.int64)}
