"""Images of any size -> the 28x28 digits every model takes, one documented preparation.

Images that are already 28x28 are used as they are (MNIST's own files, Fashion-MNIST, Kaggle's CSV,
MNIST exported as pictures). Any other size is prepared as MNIST's digits were, with the pipeline
``digitbench predict`` uses for a picture (:func:`benchmark.data.images.to_mnist`): the ink made
bright on black, stretched to 0..255 with faint noise dropped, its bounding box fitted in 20x20
(aspect kept, anti-aliased) and placed in 28x28 with its centre of mass at the centre. With
``--native-size`` nothing is resized: every image of a dataset must then have one size, and only
models that take any size (``DigitModel.any_image_size``) can run on it.

:func:`describe` is the sentence the report prints about a dataset's images.
"""

from __future__ import annotations

import numpy as np

from digitbench.benchmark.data.images import FIELD, to_mnist

#: How a dataset's images were brought to the models: the values of ``Split.preparation``'s kind.
AS_READ, PREPARED, NATIVE = "as read", "prepared as MNIST", "native size"


def prepare(images: np.ndarray, where: str, *, native: bool) -> np.ndarray:
    """``(n, height, width)`` uint8 -> ``(n, 28, 28)`` uint8 (see the module); ``native`` keeps
    them as they are. ``where`` names the file in errors (``FILE: image 7: no digit found``)."""
    if native or images.shape[1:] == (FIELD, FIELD):
        return images
    out = np.empty((len(images), FIELD, FIELD), np.uint8)
    for i, image in enumerate(images):
        out[i] = to_mnist(image, name=f"{where}: image {i + 1}")
    return out


def describe(kind: str, sizes: list[tuple[int, int]]) -> str:
    """One sentence on how the images of a dataset reached the models, from the sizes read."""
    shown = ", ".join(f"{h}x{w}" for h, w in sorted(set(sizes))[:4]) + (
        ", ..." if len(set(sizes)) > 4 else "")
    if kind == NATIVE:
        return f"native size {shown} (--native-size: not resized)"
    if kind == PREPARED:
        return (f"read at {shown} and prepared as MNIST's digits were: ink made bright on black, "
                "fitted in 20x20 keeping the aspect ratio, centred by mass in 28x28")
    return "28x28 as read"


def kind_of(sizes: list[tuple[int, int]], native: bool) -> str:
    """AS_READ when every image was 28x28, else PREPARED (or NATIVE with ``native``)."""
    if all(size == (FIELD, FIELD) for size in sizes):
        return AS_READ
    return NATIVE if native else PREPARED
