"""The 15 corruptions of MNIST-C, as our own small functions of one digit and a random Generator.

MNIST-C (Mu & Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer Vision", arXiv:1906.02337;
code at github.com/google-research/mnist-c, ``corruptions.py``) is the MNIST test set under 15
corruptions that keep a digit readable to people but trouble models trained on clean digits: noise
(shot, impulse), blur (glass, motion), affine warps (shear, scale, rotate, translate), brightness,
occlusion or clutter (stripe, fog, spatter, dotted line, zigzag) and an edge map (Canny). Each of its
functions has a severity 1..5; its released dataset (zenodo record 3239543) was made at each
function's default severity, and the strengths here are those (each function's docstring and
:data:`DESCRIPTIONS` give them). The reference's quirks that decide the strength are kept, namely:

- glass_blur's Gaussian blurs the rows direction only: the reference called scikit-image's
  ``gaussian(..., multichannel=True)`` on a 2-D image, which (in the 2019 releases) took the last
  axis for colour channels and so blurred along the first axis only; and its local swaps reach
  offsets -1 or 0 only (``np.random.randint(-1, 1)`` excludes 1), sweeping from the bottom-right.
- shear is the 2019 scikit-image ``AffineTransform(shear=0.4)``: columns move by sin(0.4) = 0.39 a
  row and rows are scaled by cos(0.4); scikit-image 0.19+ means something else by ``shear`` (a
  tan(0.4) shear), so the matrix is built here explicitly.
- zigzag keeps the reference's odd last tooth and its asymmetric tilt (the end row is drawn in
  start - 5 .. start + 4), and lines use the reference's soft profile (full ink on the line, fading
  to nothing 1.45 pixels away vertically) rather than a one-pixel ``skimage.draw`` line.

These are our own implementations with numpy, scipy.ndimage and scikit-image only (no ImageMagick,
Wand, OpenCV or imgaug, and none of the reference's code). Where ours knowingly differs:

- motion_blur: the reference calls ImageMagick's MotionBlurImage (radius 10, sigma 3) through Wand.
  Ours computes what that function does, in numpy: a one-sided streak of 21 taps weighted by a
  half Gaussian of sigma 3, the taps at whole-pixel offsets rounded along the angle, edge pixels
  repeated beyond the border. ImageMagick may round its intermediate values differently (at most a
  grey level apart).
- fog: the reference needs no ImageMagick for fog (it adds a diamond-square "plasma" fractal made
  with numpy); ours is our own diamond-square of the same size (256 x 256, cropped to the top-left
  28 x 28), roughness (each level's random amplitude divided by 1.4) and normalisation.
- spatter: likewise numpy-only in the reference (the "mud" branch of ImageNet-C's spatter, without
  its ImageMagick "water" branch); ours follows its two smoothings and thresholds with scipy.
- canny_edges uses scikit-image's ``canny`` at the reference's settings (sigma 1, thresholds 0.1 and
  0.2); scikit-image 0.26 may differ from the 2019 release in details at the image border.
- brightness adds 0.5 to each pixel directly: the reference's grey -> RGB -> HSV (V + 0.5) -> RGB ->
  grey round trip is exactly that for grey images.
- Random parameters are drawn from the same distributions as the reference's, but from our own
  Generators (the reference used the global ``np.random``), so no image equals its released one.
- The reference returns float images; ours are rounded to the nearest grey level and clipped to
  uint8, as the reference's notebook does before showing or saving them.

Determinism: every function takes the image and a ``numpy.random.Generator`` and draws all its
randomness from it (the deterministic ones, scale, brightness, stripe and canny_edges, ignore it).
:func:`corrupt` gives image ``i`` of a batch the Generator of
``SeedSequence([seed, index of the corruption in CORRUPTIONS, i])``, so a corrupted image depends
only on the seed, the corruption and its position: not on the other images or corruptions. glass_blur
and fog are vectorised over the batch inside :func:`corrupt`, with the same draws in the same order
as one image at a time, so the results are identical either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import feature, transform

from digitbench.common.errors import InputError

SIZE = 28
#: The middle of the 28 x 28 field (pixel centres at 0..27): the fixed point of the affine warps.
CENTRE = (SIZE - 1) / 2


# ---------------------------------------------------------------------------------------------- helpers

def _as_float(image: np.ndarray) -> np.ndarray:
    """A (28, 28) image of grey levels 0..255 as floats 0..1."""
    image = np.asarray(image)
    if image.shape != (SIZE, SIZE):
        raise ValueError(f"expected a (28, 28) image, got shape {image.shape}")
    return image.astype(np.float64) / 255.0


def _as_uint8(x: np.ndarray) -> np.ndarray:
    """Floats 0..1 (any shape) back to grey levels: scaled, rounded to nearest, clipped."""
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _sign(rng: np.random.Generator) -> float:
    """-1 or +1, each with probability 1/2 (the reference's "randomly switch directions")."""
    return -1.0 if rng.random() < 0.5 else 1.0


def _warp(x: np.ndarray, linear: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``x`` resampled bilinearly (zero outside) where the output pixel at (column, row) ``p`` takes
    the input at ``linear @ (p - centre) + centre + shift``: the reference's inverse maps, its
    translation chosen to keep the centre (13.5, 13.5) fixed."""
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = CENTRE - linear @ (CENTRE, CENTRE) + np.asarray(shift)
    return transform.warp(x, transform.AffineTransform(matrix=matrix), order=1, mode="constant", cval=0.0)


#: A line's ink fades with the vertical distance d from it as 1 + ln(1 - d / 2.3): 1 on the line,
#: 0 at d = 2.3 (1 - 1/e) = 1.45 pixels (the reference's profile).
_LINE_REACH = 2.3
_ROWS = np.arange(SIZE, dtype=np.float64)[:, None]
_COLS = np.arange(SIZE, dtype=np.float64)[None, :]


def _soft_line(c0: float, r0: float, c1: float, r1: float) -> np.ndarray:
    """A (28, 28) float image of the soft line from (column c0, row r0) to (c1, r1), c0 <= c1, drawn
    on the columns floor(c0) .. ceil(c1) - 1; empty for a vertical segment (as the reference)."""
    if c1 == c0:
        return np.zeros((SIZE, SIZE))
    on_line = r0 + (r1 - r0) / (c1 - c0) * (_COLS - c0)
    distance = np.minimum(np.abs(_ROWS - on_line), _LINE_REACH - 1e-10)
    ink = np.clip(1.0 + np.log(1.0 - distance / _LINE_REACH), 0.0, 1.0)
    ink[:, :max(math.floor(c0), 0)] = 0.0
    ink[:, max(math.ceil(c1), 0):] = 0.0
    return ink


def _blur(x: np.ndarray, sigma: float, axes: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """Gaussian blur over the given axes as scikit-image's ``gaussian`` does it (edge pixels
    repeated, kernel truncated at 4 sigma)."""
    for axis in axes:
        x = ndimage.gaussian_filter1d(x, sigma, axis=axis, mode="nearest", truncate=4.0)
    return x


@dataclass(frozen=True)
class _Batched:
    """A corruption split into its per-image random draws and one vectorised application, so that
    :func:`corrupt` can do many images at once with exactly the draws of one at a time."""

    #: rng -> the image's random arrays (fixed shapes)
    draw: Callable[[np.random.Generator], tuple[np.ndarray, ...]]
    #: (images (n, 28, 28) as floats 0..1, *draws stacked on a new first axis) -> floats 0..1
    apply: Callable[..., np.ndarray]
    #: images per application (bounds the memory)
    chunk: int

    def one(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        draws = self.draw(rng)
        return _as_uint8(self.apply(_as_float(image)[None], *(d[None] for d in draws))[0])

    def many(self, images: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        out = np.empty(images.shape, np.uint8)
        for start in range(0, len(images), self.chunk):
            part = slice(start, start + self.chunk)
            draws = [self.draw(rng) for rng in rngs[part]]
            stacked = [np.stack(column) for column in zip(*draws, strict=True)]
            out[part] = _as_uint8(self.apply(images[part].astype(np.float64) / 255.0, *stacked))
        return out


# ------------------------------------------------------------------------------------------------ noise

SHOT_PHOTONS = 3  # severity 5
IMPULSE_AMOUNT = 0.17  # severity 4


def shot_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise at 3 "photons" for full ink (severity 5): each pixel ``x`` (0..1) becomes
    Poisson(3 x) / 3, clipped; the black background stays black and ink breaks into 0/85/170/255."""
    x = _as_float(image)
    return _as_uint8(np.clip(rng.poisson(x * SHOT_PHOTONS) / SHOT_PHOTONS, 0.0, 1.0))


def impulse_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise on 17% of the pixels (severity 4): each pixel is hit with probability
    0.17 and a hit pixel is set to white or black with probability 1/2 each."""
    x = _as_float(image)
    hit = rng.random(x.shape) < IMPULSE_AMOUNT
    salt = rng.random(x.shape) < 0.5
    x[hit & salt] = 1.0
    x[hit & ~salt] = 0.0
    return _as_uint8(x)


# ------------------------------------------------------------------------------------------------- blur

GLASS_SIGMA, GLASS_REACH, GLASS_ROUNDS = 0.7, 1, 2  # severity 1
#: The rows (and columns) the swaps visit, in the reference's order: 27 down to 2.
_GLASS_SPAN = np.arange(SIZE - GLASS_REACH, GLASS_REACH, -1)


def _glass_draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per round and visited pixel: whether it swaps (probability 1/2), and its neighbour's flat
    offset (row and column offsets each -1 or 0, the reference's randint(-1, 1)), 0 when it stays."""
    k = len(_GLASS_SPAN)
    swaps = rng.random((GLASS_ROUNDS, k, k)) < 0.5
    offsets = rng.integers(-GLASS_REACH, GLASS_REACH, size=(GLASS_ROUNDS, k, k, 2))
    return (swaps * (offsets[..., 0] * SIZE + offsets[..., 1]),)


def _glass_apply(x: np.ndarray, jumps: np.ndarray) -> np.ndarray:
    """Blur (rows direction), truncate to whole grey levels, swap pixels in the reference's sweep
    order (vectorised over the batch), blur again."""
    n = len(x)
    levels = np.floor(_blur(x, GLASS_SIGMA, axes=(-2,)) * 255.0)  # the reference's np.uint8(...)
    flat = np.ascontiguousarray(levels.reshape(n, SIZE * SIZE).T)  # (pixel, image)
    images = np.arange(n)
    for r in range(GLASS_ROUNDS):
        for i, row in enumerate(_GLASS_SPAN):
            for j, col in enumerate(_GLASS_SPAN):
                here = row * SIZE + col
                there = here + jumps[:, r, i, j]
                kept = flat[here].copy()
                flat[here] = flat[there, images]
                flat[there, images] = kept
    swapped = flat.T.reshape(n, SIZE, SIZE) / 255.0
    return np.clip(_blur(swapped, GLASS_SIGMA, axes=(-2,)), 0.0, 1.0)


_GLASS = _Batched(_glass_draw, _glass_apply, chunk=2048)


def glass_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Glass blur at severity 1: a Gaussian blur of sigma 0.7 along the rows direction, then two
    sweeps (bottom-right to top-left) in which each pixel, with probability 1/2, swaps with its
    neighbour at row and column offsets each drawn from {-1, 0}, then the same blur again."""
    return _GLASS.one(image, rng)


MOTION_TAPS, MOTION_SIGMA, MOTION_ANGLE = 21, 3.0, 45.0  # severity 1: radius 10, sigma 3, +-45 degrees
_MOTION_STEPS = np.arange(MOTION_TAPS)
_MOTION_WEIGHTS = np.exp(-(_MOTION_STEPS**2) / (2 * MOTION_SIGMA**2))
_MOTION_WEIGHTS /= _MOTION_WEIGHTS.sum()
_INDEX = np.arange(SIZE)


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Motion blur at severity 1, as ImageMagick's MotionBlurImage(radius 10, sigma 3) at an angle
    drawn uniformly in -45..45 degrees: each pixel becomes the weighted mean of the 21 pixels from it
    along the angle (weights a half Gaussian of sigma 3 px, offsets rounded to whole pixels, edge
    pixels repeated), so the digit trails off on one side (mean offset 2.1 px)."""
    x = _as_float(image)
    angle = math.radians(rng.uniform(-MOTION_ANGLE, MOTION_ANGLE))
    d_col = np.ceil(_MOTION_STEPS * math.cos(angle) - 0.5).astype(int)
    d_row = np.ceil(_MOTION_STEPS * math.sin(angle) - 0.5).astype(int)
    rows = np.clip(_INDEX[None, :, None] + d_row[:, None, None], 0, SIZE - 1)
    cols = np.clip(_INDEX[None, None, :] + d_col[:, None, None], 0, SIZE - 1)
    return _as_uint8(np.tensordot(_MOTION_WEIGHTS, x[rows, cols], axes=1))


# ---------------------------------------------------------------------------------------------- warps

SHEAR = 0.4  # severity 2
SCALE = 0.7  # severity 3: the digit shrinks to 70%
ROTATION = 0.4  # severity 2, radians (22.9 degrees)
TRANSLATION = 3  # severity 3, pixels on each axis


def shear(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shear at severity 2, either direction: about the centre, each column moves by sin(0.4) = 0.39
    pixels a row and the rows are scaled by cos(0.4) (2019 scikit-image's ``shear=0.4``), bilinear."""
    angle = _sign(rng) * SHEAR
    linear = np.array([[1.0, -math.sin(angle)], [0.0, math.cos(angle)]])
    return _as_uint8(_warp(_as_float(image), linear))


def scale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale at severity 3: the digit shrinks to 70% about the centre, bilinear (ignores ``rng``)."""
    return _as_uint8(_warp(_as_float(image), np.eye(2) / SCALE))


def rotate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation at severity 2: by 0.4 radians (22.9 degrees) about the centre, in a direction drawn
    with probability 1/2 each, bilinear."""
    angle = _sign(rng) * ROTATION
    c, s = math.cos(angle), math.sin(angle)
    return _as_uint8(_warp(_as_float(image), np.array([[c, -s], [s, c]])))


def translate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Translation at severity 3: by 3 pixels horizontally and 3 vertically, each direction drawn
    with probability 1/2 (four outcomes); what leaves the field is lost, zeros come in."""
    shift = (_sign(rng) * TRANSLATION, _sign(rng) * TRANSLATION)
    return _as_uint8(_warp(_as_float(image), np.eye(2), shift))


# ---------------------------------------------------------------------------------- light and occlusion

BRIGHTNESS = 0.5  # severity 5
STRIPE_WIDTH = 7


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness at severity 5: +0.5 on every pixel (+127.5 grey levels, clipped), so the background
    becomes 128 and ink above 127 saturates (ignores ``rng``)."""
    return _as_uint8(np.clip(_as_float(image) + BRIGHTNESS, 0.0, 1.0))


def stripe(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stripes: the 7 leftmost and the 7 rightmost columns inverted (ignores ``rng``)."""
    x = _as_float(image)
    x[:, :STRIPE_WIDTH] = 1.0 - x[:, :STRIPE_WIDTH]
    x[:, -STRIPE_WIDTH:] = 1.0 - x[:, -STRIPE_WIDTH:]
    return _as_uint8(x)


FOG_STRENGTH, FOG_DECAY, PLASMA_SIZE = 3.0, 1.4, 256  # severity 5
_PLASMA_START = 100.0  # the first level's random amplitude is this squared


def _fog_draw(rng: np.random.Generator) -> tuple[np.ndarray]:
    """Uniform 0..1 draws for every point of the plasma but its fixed (0, 0) corner, in float32
    (65,535 draws an image: single precision halves the time)."""
    return (rng.random(PLASMA_SIZE * PLASMA_SIZE - 1, dtype=np.float32),)


def _plasma_corner(noise: np.ndarray) -> np.ndarray:
    """The top-left 28 x 28 of (n) 256 x 256 diamond-square fractals on a torus, each scaled so its
    whole map spans 0..1. Each level doubles the grid: the centre of every square, then the middle
    of every edge, gets the mean of its four neighbours plus amplitude**2 times uniform -1..1; the
    amplitude starts at 100 and is divided by 1.4 a level. The last level's map is never assembled:
    only its corner and its extremes are needed."""
    n = len(noise)
    grid = np.zeros((n, 1, 1), np.float32)  # the map's points so far, one every 256 / k pixels
    amplitude, used = _PLASMA_START, 0

    def noisy(total: np.ndarray) -> np.ndarray:
        nonlocal used
        count = total.shape[1] * total.shape[2]
        spread = np.float32(amplitude**2)  # the draws 0..1 become -spread..spread
        values = noise[:, used:used + count].reshape(total.shape) * (2 * spread)
        used += count
        values += total * np.float32(0.25)
        values -= spread
        return values

    while True:
        pairs = grid + np.roll(grid, -1, axis=2)  # each point and its right neighbour
        centres = noisy(pairs + np.roll(pairs, -1, axis=1))
        tops = noisy(pairs + centres + np.roll(centres, 1, axis=1))
        lefts = noisy(grid + np.roll(grid, -1, axis=1) + centres + np.roll(centres, 1, axis=2))
        k = grid.shape[1]
        if 2 * k == PLASMA_SIZE:
            break
        grid = _interleave(grid, centres, tops, lefts)
        amplitude /= FOG_DECAY
    pieces = (grid, centres, tops, lefts)
    low = np.min([piece.min(axis=(1, 2)) for piece in pieces], axis=0)[:, None, None]
    high = np.max([piece.max(axis=(1, 2)) for piece in pieces], axis=0)[:, None, None]
    half = SIZE // 2
    corner = _interleave(*(piece[:, :half, :half] for piece in pieces))
    return (corner - low) / (high - low)


def _interleave(grid: np.ndarray, centres: np.ndarray, tops: np.ndarray, lefts: np.ndarray) -> np.ndarray:
    """(n, 2k, 2k) from a level's (n, k, k) points: grid at even rows and columns, centres at odd
    ones, tops (edge middles) at even rows and odd columns, lefts at odd rows and even columns."""
    n, k = grid.shape[:2]
    out = np.empty((n, 2 * k, 2 * k), grid.dtype)
    out[:, ::2, ::2], out[:, 1::2, 1::2] = grid, centres
    out[:, ::2, 1::2], out[:, 1::2, ::2] = tops, lefts
    return out


def _fog_apply(x: np.ndarray, noise: np.ndarray) -> np.ndarray:
    peak = x.max(axis=(1, 2), keepdims=True)
    fogged = x + FOG_STRENGTH * _plasma_corner(noise)
    return np.clip(fogged * peak / (peak + FOG_STRENGTH), 0.0, 1.0)


_FOG = _Batched(_fog_draw, _fog_apply, chunk=64)


def fog(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fog at severity 5: 3 times a plasma fractal (the top-left 28 x 28 of a 256 x 256
    diamond-square map scaled to 0..1, roughness 1.4) is added and the sum scaled by
    max / (max + 3), so a digit of full ink keeps a quarter of its contrast over a smooth haze."""
    return _FOG.one(image, rng)


SPATTER_MEAN, SPATTER_SPREAD, SPATTER_THRESHOLD = 0.65, 0.3, 0.65  # severity 4
SPATTER_SMOOTH, SPATTER_BLOB_SMOOTH, SPATTER_COVER = 1.0, 1.5, 0.8
MUD = 63 / 255


def spatter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mud spatter at severity 4: Gaussian noise (mean 0.65, sd 0.3) smoothed with sigma 1 is
    thresholded at 0.65; that mask smoothed with sigma 1.5 gives the mud's cover m where it reaches
    0.8 (0 elsewhere), and each pixel becomes x (1 - m) + (63/255) m: grey blobs of 50..63 that also
    cover the ink."""
    x = _as_float(image)
    liquid = _blur(rng.normal(SPATTER_MEAN, SPATTER_SPREAD, size=x.shape), SPATTER_SMOOTH)
    cover = _blur((liquid > SPATTER_THRESHOLD).astype(np.float64), SPATTER_BLOB_SMOOTH)
    cover[cover < SPATTER_COVER] = 0.0
    return _as_uint8(np.clip(x * (1.0 - cover) + MUD * cover, 0.0, 1.0))


#: dotted_line's dashes: columns 2-3, 6-7, ..., 26 carry the line, 0-1, 4-5, ... do not.
_DASHES = (np.arange(SIZE) // 2) % 2 == 1
ZIGZAG_TOOTH, ZIGZAG_HEIGHT, ZIGZAG_FROM, ZIGZAG_TO, ZIGZAG_TILT = 2.0, 2.0, 2, 25, 5


def dotted_line(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dashed line across the field: from column 0 to 27, its end rows each drawn in 0..26, dashes
    2 columns on and 2 off, the reference's soft profile (about 3 pixels thick), added to the ink."""
    x = _as_float(image)
    r0, r1 = rng.integers(0, SIZE - 1, size=2)
    line = _soft_line(0, float(r0), SIZE - 1, float(r1)) * _DASHES
    return _as_uint8(np.clip(x + line, 0.0, 1.0))


def _zigzag_points(r0: float, r1: float) -> tuple[np.ndarray, np.ndarray]:
    """The zigzag's corners (columns, rows): teeth along the line from (2, r0) to (25, r1), each
    2 px along and 2 px off it, alternately above and below, ending as the reference does."""
    run = ZIGZAG_TO - ZIGZAG_FROM
    theta = math.atan((r1 - r0) / run)
    length = run / math.cos(theta)
    teeth = int((length - ZIGZAG_TOOTH) // (2 * ZIGZAG_TOOTH)) + 1
    along = [0.0] + [(2 * i + 1) * ZIGZAG_TOOTH for i in range(teeth)]
    across = [0.0] + [(-1) ** i * ZIGZAG_HEIGHT for i in range(teeth)]
    whole = 2 * ZIGZAG_TOOTH * (length // (2 * ZIGZAG_TOOTH))
    if length != whole:
        along.append(length)
        across.append(across[-1] / (2 * (length - whole)))
    along_, across_ = np.array(along), np.array(across)
    cols = ZIGZAG_FROM + math.cos(theta) * along_ - math.sin(theta) * across_
    rows = r0 + math.sin(theta) * along_ + math.cos(theta) * across_
    return cols, rows


def zigzag(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zigzag across the field: from column 2 to 25, starting at a row drawn in 0..26 and ending
    -5..+4 rows from it, teeth 4 px long and 2 px high either side, in the reference's soft profile,
    added to the ink."""
    x = _as_float(image)
    r0 = int(rng.integers(0, SIZE - 1))
    r1 = r0 + int(rng.integers(-ZIGZAG_TILT, ZIGZAG_TILT))
    cols, rows = _zigzag_points(r0, r1)
    for k in range(1, len(cols)):
        x += _soft_line(cols[k - 1], rows[k - 1], cols[k], rows[k])
    return _as_uint8(np.clip(x, 0.0, 1.0))


CANNY_SIGMA, CANNY_LOW, CANNY_HIGH = 1.0, 0.1, 0.2


def canny_edges(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The Canny edge map of the digit (sigma 1, hysteresis thresholds 0.1 and 0.2 of full ink):
    edges white, everything else black, so strokes become their outlines (ignores ``rng``)."""
    edges = feature.canny(_as_float(image), sigma=CANNY_SIGMA, low_threshold=CANNY_LOW,
                          high_threshold=CANNY_HIGH)
    return edges.astype(np.uint8) * 255


# ------------------------------------------------------------------------------------------------ API

#: The 15 corruptions of MNIST-C, in its order: ``name -> f(image, rng) -> image`` on (28, 28) uint8.
CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "shear": shear,
    "scale": scale,
    "rotate": rotate,
    "brightness": brightness,
    "translate": translate,
    "stripe": stripe,
    "fog": fog,
    "spatter": spatter,
    "dotted_line": dotted_line,
    "zigzag": zigzag,
    "canny_edges": canny_edges,
}

#: A one-line description per corruption with its strength (MNIST-C's released dataset).
DESCRIPTIONS: dict[str, str] = {
    "shot_noise": "shot_noise: Poisson noise at 3 photons for full ink (x -> Poisson(3x)/3)",
    "impulse_noise": "impulse_noise: salt-and-pepper on 17% of the pixels, half white, half black",
    "glass_blur": "glass_blur: vertical Gaussian sigma 0.7, 2 sweeps of neighbour swaps (offsets -1/0), "
                  "blurred again",
    "motion_blur": "motion_blur: one-sided 21-tap streak, half-Gaussian sigma 3 px, angle -45..45 degrees",
    "shear": "shear: 0.39 px a row either way (skimage 2019 shear=0.4, rows x cos 0.4), bilinear",
    "scale": "scale: shrunk to 70% about the centre, bilinear",
    "rotate": "rotate: by 0.4 rad (22.9 degrees) either way about the centre, bilinear",
    "brightness": "brightness: +0.5 on every pixel (+127.5 grey levels, clipped): background 128",
    "translate": "translate: by 3 px horizontally and 3 px vertically, each direction random",
    "stripe": "stripe: the 7 leftmost and 7 rightmost columns inverted",
    "fog": "fog: 3 x plasma fractal (256 px diamond-square, roughness 1.4) added, scaled by max/(max+3)",
    "spatter": "spatter: mud blobs of grey 50..63 from smoothed, thresholded noise (sigma 1, then 1.5)",
    "dotted_line": "dotted_line: a dashed soft line (2 px on, 2 off) across the width, end rows random 0..26",
    "zigzag": "zigzag: soft zigzag, teeth 4 px long and 2 px high, columns 2-25, start row 0..26, tilt -5..4",
    "canny_edges": "canny_edges: replaced by its Canny edge map (sigma 1, thresholds 0.1 / 0.2)",
}

#: Corruptions :func:`corrupt` vectorises over the batch (with the draws of one image at a time).
_BATCHED: dict[str, _Batched] = {"glass_blur": _GLASS, "fog": _FOG}


def _known() -> str:
    return "known: " + ", ".join(CORRUPTIONS)


def corrupt(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 28, 28) uint8: each image corrupted by ``CORRUPTIONS[name]`` with its
    own Generator, ``default_rng(SeedSequence([seed, index of name in CORRUPTIONS, image index]))``,
    so the result depends only on (seed, name, position), not on the other images or corruptions."""
    if name not in CORRUPTIONS:
        raise InputError(f"--corruptions: unknown corruption {name!r}; {_known()}")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"expected images of shape (n, 28, 28), got {images.shape}")
    index = list(CORRUPTIONS).index(name)
    rngs = [np.random.default_rng(np.random.SeedSequence([seed, index, i])) for i in range(len(images))]
    if name in _BATCHED:
        return _BATCHED[name].many(images, rngs)
    function = CORRUPTIONS[name]
    out = np.empty(images.shape, np.uint8)
    for i, (image, rng) in enumerate(zip(images, rngs, strict=True)):
        out[i] = function(image, rng)
    return out


def resolve(spec: str | tuple[str, ...]) -> tuple[str, ...]:
    """The corruption names ``spec`` asks for: ``"all"`` -> every name; ``"a,b"`` (or a tuple of
    names) -> those, in :data:`CORRUPTIONS` order, duplicates dropped; hyphens count as underscores
    (``shot-noise`` is ``shot_noise``). An unknown name raises a one-line InputError listing the known."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    asked = [item.strip() for item in items if item.strip()]
    if any(item.lower() == "all" for item in asked):
        return tuple(CORRUPTIONS)
    if not asked:
        raise InputError(f"--corruptions: no corruption named; {_known()}")
    wanted = set()
    for item in asked:
        name = item.lower().replace("-", "_")
        if name not in CORRUPTIONS:
            raise InputError(f"--corruptions: unknown corruption {item!r}; {_known()}")
        wanted.add(name)
    return tuple(name for name in CORRUPTIONS if name in wanted)
