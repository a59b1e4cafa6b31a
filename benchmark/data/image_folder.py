"""``folder:DIR``: pictures in the image-folder layout of Keras' ``image_dataset_from_directory``
and torchvision's ``ImageFolder``.

``DIR/train/<label>/<picture>`` and, when present, ``DIR/test/<label>/<picture>``, where ``<label>``
is a folder named ``0`` .. ``9`` and a picture is any file Pillow reads (PNG, JPEG, BMP, GIF, TIFF,
WebP, ...); hidden files (``.DS_Store``) are skipped. Pictures of any size and polarity: a 28x28
picture on a light background is inverted (MNIST's ink is light on black) and used as it is, any
other size is prepared as MNIST's digits were (:mod:`benchmark.data.prepare`). Every problem is one
line naming the folder or the picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitbench.benchmark.data.images import FIELD, border_is_light, read_gray, to_mnist
from digitbench.common.errors import InputError

PARTS = ("train", "test")


def list_pictures(folder: Path) -> dict[str, list[tuple[Path, int]]]:
    """``{"train": [(picture, label), ...], "test": [...]}`` (test only when DIR/test exists), in
    label then file-name order; checks the layout, not the pictures."""
    train = folder / "train"
    if not train.is_dir():
        raise InputError(f"{folder}: no train/ folder (an image folder holds train/<digit>/<picture> "
                         "and optionally test/<digit>/<picture>)")
    found = {}
    for part in PARTS:
        root = folder / part
        if not root.is_dir():
            continue
        pictures = []
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                raise InputError(f"{entry}: a file directly in {part}/; pictures go in "
                                 f"{part}/<digit>/, one folder per label 0..9")
            if entry.name not in {str(d) for d in range(10)}:
                raise InputError(f"{entry}: folder name {entry.name!r} is not a digit label 0..9")
            pictures += [(p, int(entry.name)) for p in sorted(entry.iterdir())
                         if not p.name.startswith(".")]
        if not pictures:
            raise InputError(f"{root}: no pictures (expected {part}/<digit>/<picture> files)")
        found[part] = pictures
    return found


def read_pictures(pictures: list[tuple[Path, int]], native: bool) -> tuple[np.ndarray, np.ndarray,
                                                                           list[tuple[int, int]]]:
    """(images ``(n, 28, 28)`` uint8, or native size, labels, the size each picture was read at)."""
    images, sizes = [], []
    for path, _ in pictures:
        if path.is_dir():
            raise InputError(f"{path}: a folder inside a label folder; pictures only")
        gray = read_gray(path)
        sizes.append(gray.shape)
        if border_is_light(gray):
            gray = 255.0 - gray
        if native and gray.shape != sizes[0]:
            raise InputError(f"{path}: {gray.shape[0]}x{gray.shape[1]} pixels, but "
                             f"{pictures[0][0]} is {sizes[0][0]}x{sizes[0][1]} (--native-size "
                             "needs one size)")
        if native or gray.shape == (FIELD, FIELD):  # used as it is
            images.append(np.clip(np.round(gray), 0, 255).astype(np.uint8))
        else:
            images.append(to_mnist(gray, name=str(path)))
    labels = np.array([label for _, label in pictures], np.int64)
    return np.stack(images), labels, sizes
