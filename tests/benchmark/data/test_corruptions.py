"""MNIST-C's corruptions (benchmark.data.corruptions): every one deterministic in its seed, uint8 of
the input's shape and visibly at work; each at the strength of MNIST-C's released dataset, measured
on synthetic digits; corrupt()'s per-position Generators; resolve()'s names and its one-line error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from digitbench.benchmark.data.corruptions import CORRUPTIONS, DESCRIPTIONS, corrupt, resolve
from digitbench.common.errors import InputError

NAMES = list(CORRUPTIONS)
#: The corruptions that draw nothing: their output does not depend on the seed.
DETERMINISTIC = {"scale", "brightness", "stripe", "canny_edges"}
RANDOM = [name for name in NAMES if name not in DETERMINISTIC]


# ------------------------------------------------------------------------------ synthetic digits

def _pen(*strokes: list[tuple[float, float]], width: float = 2.5) -> np.ndarray:
    """An anti-aliased digit: polylines of (row, column) points drawn with a pen ``width`` wide."""
    rows, cols = np.mgrid[:28, :28].astype(float)
    distance = np.full((28, 28), np.inf)
    for points in strokes:
        for (r0, c0), (r1, c1) in zip(points, points[1:], strict=False):
            d_r, d_c = r1 - r0, c1 - c0
            t = np.clip(((rows - r0) * d_r + (cols - c0) * d_c) / (d_r**2 + d_c**2), 0, 1)
            distance = np.minimum(distance, np.hypot(rows - r0 - t * d_r, cols - c0 - t * d_c))
    return np.round(np.clip(width / 2 + 0.5 - distance, 0, 1) * 255).astype(np.uint8)


def _ring(radius: float = 7.0, width: float = 2.5) -> np.ndarray:
    rows, cols = np.mgrid[:28, :28].astype(float)
    distance = np.abs(np.hypot(rows - 14, cols - 14) - radius)
    return np.round(np.clip(width / 2 + 0.5 - distance, 0, 1) * 255).astype(np.uint8)


def _block(rows: slice, cols: slice) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[rows, cols] = 255
    return image


#: A vertical bar, 16 rows by 4 columns, centred on the field's centre (13.5, 13.5).
BAR = _block(slice(6, 22), slice(12, 16))
#: A filled 12 x 12 square.
SQUARE = _block(slice(8, 20), slice(8, 20))
ONE = _pen([(5, 16), (22, 11)])
SEVEN = _pen([(6, 8), (6, 20), (22, 12)])
FOUR = _pen([(5, 15), (16, 7), (16, 21)], [(9, 17), (22, 17)])
#: Five digits of MNIST's kind (white ink on black, about 20 pixels tall).
DIGITS = np.stack([BAR, _ring(), ONE, SEVEN, FOUR])


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _centre(image: np.ndarray) -> np.ndarray:
    return np.array(ndimage.center_of_mass(image.astype(float)))


def _orientation(image: np.ndarray) -> float:
    """The angle (radians) of the ink's principal axis from the vertical, from its second moments."""
    rows, cols = np.mgrid[:28, :28]
    w = image.astype(float) / image.sum()
    r, c = (w * rows).sum(), (w * cols).sum()
    rr, cc, rc = (w * (rows - r) ** 2).sum(), (w * (cols - c) ** 2).sum(), (w * (rows - r) * (cols - c)).sum()
    return 0.5 * math.atan2(2 * rc, rr - cc)


def _spread(image: np.ndarray, axis: int) -> float:
    """The ink's standard deviation along rows (axis 0) or columns (axis 1)."""
    profile = image.astype(float).sum(axis=1 - axis)
    where = np.arange(28)
    mean = (profile * where).sum() / profile.sum()
    return math.sqrt((profile * (where - mean) ** 2).sum() / profile.sum())


def _many(image: np.ndarray, name: str, count: int = 8) -> np.ndarray:
    """``image`` corrupted at ``count`` positions of a batch: ``count`` independent draws."""
    return corrupt(np.repeat(image[None], count, axis=0), name, seed=0)


# --------------------------------------------------------------------------- every corruption

def test_the_fifteen_of_mnist_c_in_order_each_described_on_one_line() -> None:
    assert NAMES == ["shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale",
                     "rotate", "brightness", "translate", "stripe", "fog", "spatter", "dotted_line",
                     "zigzag", "canny_edges"]
    assert list(DESCRIPTIONS) == NAMES
    for name, text in DESCRIPTIONS.items():
        assert text.startswith(f"{name}: ") and "\n" not in text and len(text) > len(name) + 20


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name: str) -> None:
    function = CORRUPTIONS[name]
    for image in DIGITS:
        assert np.array_equal(function(image, _rng(7)), function(image, _rng(7)))
    assert np.array_equal(corrupt(DIGITS, name, seed=3), corrupt(DIGITS, name, seed=3))


@pytest.mark.parametrize("name", NAMES)
def test_uint8_of_the_input_shape_and_the_input_left_alone(name: str) -> None:
    before = DIGITS.copy()
    out = corrupt(DIGITS, name)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    single = CORRUPTIONS[name](DIGITS[2], _rng())
    assert single.dtype == np.uint8 and single.shape == (28, 28)
    assert np.array_equal(DIGITS, before)


@pytest.mark.parametrize("name", NAMES)
def test_every_image_is_changed(name: str) -> None:
    out = corrupt(DIGITS, name)
    assert all(not np.array_equal(o, d) for o, d in zip(out, DIGITS, strict=True))


@pytest.mark.parametrize("name", RANDOM)
def test_another_seed_gives_another_output(name: str) -> None:
    assert not np.array_equal(corrupt(DIGITS, name, seed=0), corrupt(DIGITS, name, seed=1))


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_corruptions_ignore_the_seed(name: str) -> None:
    assert np.array_equal(corrupt(DIGITS, name, seed=0), corrupt(DIGITS, name, seed=1))
    assert np.array_equal(CORRUPTIONS[name](ONE, _rng(1)), CORRUPTIONS[name](ONE, _rng(2)))


# ------------------------------------------------------------------------------------- corrupt

@pytest.mark.parametrize("name", NAMES)
def test_corrupt_gives_each_position_its_own_generator(name: str) -> None:
    """Image i is corrupted with default_rng(SeedSequence([seed, index of name, i])): a prefix of the
    batch comes out the same, and changing the images before a position leaves it alone."""
    k = NAMES.index(name)
    out = corrupt(DIGITS, name, seed=5)
    for i, image in enumerate(DIGITS):
        rng = np.random.default_rng(np.random.SeedSequence([5, k, i]))
        assert np.array_equal(out[i], CORRUPTIONS[name](image, rng))
    assert np.array_equal(corrupt(DIGITS[:4], name, seed=5), out[:4])
    others = np.concatenate([DIGITS[::-1][:3], DIGITS[3:]])
    assert np.array_equal(corrupt(others, name, seed=5)[3:], out[3:])


def test_corrupt_of_no_images_and_its_errors() -> None:
    assert corrupt(np.zeros((0, 28, 28), np.uint8), "fog").shape == (0, 28, 28)
    with pytest.raises(InputError, match="unknown corruption 'blur'"):
        corrupt(DIGITS, "blur")
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        corrupt(DIGITS[0], "rotate")


def test_a_corruption_depends_on_its_name_not_only_on_the_seed() -> None:
    """The corruption's index is part of the seed: shear and rotate (both drawing a direction first)
    do not turn the bar the same way, nor the opposite way, at all 16 positions."""
    shear, rotate = ([np.sign(_orientation(o)) for o in _many(BAR, name, 16)] for name in ("shear", "rotate"))
    assert shear != rotate and shear != [-s for s in rotate]


# ----------------------------------------------------------------------------------- strengths

def test_rotate_turns_a_bar_by_0_4_radians_either_way() -> None:
    """MNIST-C's rotate (severity 2) turns by exactly 0.4 rad (22.9 degrees), sign at random."""
    angles = [_orientation(o) for o in _many(BAR, "rotate")]
    assert abs(_orientation(BAR)) < 1e-9
    for angle in angles:
        assert math.radians(20.9) <= abs(angle) <= math.radians(24.9)
    assert min(angles) < 0 < max(angles)
    for out in _many(BAR, "rotate"):
        assert np.allclose(_centre(out), _centre(BAR), atol=0.05)


def test_translate_moves_the_centre_of_mass_3_pixels_on_each_axis() -> None:
    shifts = np.array([_centre(o) - _centre(ONE) for o in _many(ONE, "translate", 12)])
    assert np.allclose(np.abs(shifts), 3.0, atol=0.01)
    assert {tuple(np.sign(s).astype(int)) for s in shifts} == {(-1, -1), (-1, 1), (1, -1), (1, 1)}


def test_shear_tilts_a_bar_by_sin_0_4_columns_a_row_either_way() -> None:
    """The bar's top and bottom move horizontally in opposite directions, 0.39 px a row."""
    slopes = []
    for out in _many(BAR, "shear"):
        rows = np.flatnonzero(out.sum(axis=1) > 255)
        cols = np.array([np.average(np.arange(28), weights=out[r].astype(float)) for r in rows])
        top, bottom = cols[:3].mean() - 13.5, cols[-3:].mean() - 13.5
        assert np.sign(top) == -np.sign(bottom) and 1.5 < abs(top) < 4.5 and 1.5 < abs(bottom) < 4.5
        slopes.append(np.polyfit(rows, cols, 1)[0])
        assert _spread(out, 0) / _spread(BAR, 0) == pytest.approx(1 / math.cos(0.4), abs=0.04)
    assert np.allclose(np.abs(slopes), math.sin(0.4), atol=0.03)
    assert min(slopes) < 0 < max(slopes)


def test_scale_shrinks_the_ink_to_70_percent_about_the_centre() -> None:
    for digit in (SEVEN, FOUR, _ring()):
        out = CORRUPTIONS["scale"](digit, _rng())
        for axis in (0, 1):
            assert _spread(out, axis) / _spread(digit, axis) == pytest.approx(0.7, abs=0.02)
        assert out.astype(float).sum() / digit.astype(float).sum() == pytest.approx(0.49, abs=0.02)
    bar = CORRUPTIONS["scale"](BAR, _rng())  # 16 rows tall -> 11.2 (its 4 columns blur a little)
    assert _spread(bar, 0) / _spread(BAR, 0) == pytest.approx(0.7, abs=0.02)
    assert np.sum(bar.sum(axis=1) > 127) in (11, 12)
    assert np.allclose(_centre(CORRUPTIONS["scale"](BAR, _rng())), 13.5, atol=0.05)


def test_brightness_raises_the_background_by_half_the_range() -> None:
    out = corrupt(DIGITS, "brightness")
    background = DIGITS == 0
    assert out[background].mean() - DIGITS[background].mean() == pytest.approx(127.5, abs=0.5)
    assert np.all(out[background] == 128) and np.all(out[DIGITS == 255] == 255)


def test_shot_noise_breaks_full_ink_into_thirds_and_leaves_the_background() -> None:
    """Poisson(3)/3 of full ink: P(below 3 photons) = 1 - 8.5 e^-3 = 42% of it changes."""
    out = corrupt(DIGITS, "shot_noise")
    assert np.all(out[DIGITS == 0] == 0)
    full = out[DIGITS == 255]
    assert set(np.unique(full)) <= {0, 85, 170, 255}
    assert 0.33 < np.mean(full != 255) < 0.52


def test_impulse_noise_hits_17_percent_half_of_them_visibly() -> None:
    """Each pixel is hit with probability 0.17 and set to 0 or 255: on black or full-ink pixels half
    of the hits show, 8.5% of the pixels."""
    out = corrupt(DIGITS, "impulse_noise")
    changed = out != DIGITS
    assert 0.065 < changed.mean() < 0.11
    assert set(np.unique(out[changed])) <= {0, 255}
    binary = (DIGITS == 0) | (DIGITS == 255)
    salted = (DIGITS == 0) & (out == 255)
    peppered = (DIGITS == 255) & (out == 0)
    assert abs(salted.sum() / (DIGITS == 0).sum() - peppered.sum() / (DIGITS == 255).sum()) < 0.04
    assert 0.065 < changed[binary].mean() < 0.105


@pytest.mark.parametrize(("name", "drift"), [("glass_blur", (0.0, 1.5)), ("motion_blur", (1.0, 3.5))])
def test_blurs_spread_the_ink_and_keep_the_centre_near(name: str, drift: tuple[float, float]) -> None:
    """More pixels inked, fewer at full ink; the centre of mass stays near (motion blur's streak is
    one-sided, as ImageMagick's: it trails 2.1 px on average)."""
    for out, digit in zip(corrupt(DIGITS, name), DIGITS, strict=True):
        assert np.count_nonzero(out) > 1.4 * np.count_nonzero(digit)
        assert np.sum(out >= 250) < 0.6 * np.sum(digit >= 250)
        assert drift[0] <= np.hypot(*(_centre(out) - _centre(digit))) <= drift[1]
        assert out.astype(float).sum() == pytest.approx(digit.astype(float).sum(), rel=0.1)


def test_glass_blur_blurs_the_rows_direction() -> None:
    """The reference's Gaussian blurs along rows only, and its sweeps (from the bottom-right, swaps
    with offsets -1 or 0) carry a pixel right or down by at most one a sweep, two in all: a
    horizontal line (columns 6-21) spreads over rows but never past column 23."""
    line = _block(slice(14, 15), slice(6, 22))
    for out in corrupt(np.repeat(line[None], 6, axis=0), "glass_blur"):
        assert np.all(out[:, 24:] == 0)
        assert out[:14].any() and out[15:].any() and np.count_nonzero(out.any(axis=1)) >= 5


def test_stripe_inverts_the_outer_seven_columns() -> None:
    out = corrupt(DIGITS, "stripe")
    outer = np.r_[0:7, 21:28]
    assert np.array_equal(out[:, :, outer], 255 - DIGITS[:, :, outer])
    assert np.array_equal(out[:, :, 7:21], DIGITS[:, :, 7:21])


def _far_from_ink(digit: np.ndarray, pixels: float = 4.0) -> np.ndarray:
    return ndimage.distance_transform_edt(digit == 0) >= pixels


def test_dotted_line_adds_dashes_across_the_field() -> None:
    for out, digit in zip(_many(ONE, "dotted_line", 6), [ONE] * 6, strict=True):
        added = (out > digit) & _far_from_ink(digit)
        assert added.sum() >= 10
        columns = np.flatnonzero(added.any(axis=0))
        assert set(columns % 4) <= {2, 3}  # dashes on columns 2-3, 6-7, ...: 0-1, 4-5, ... stay off
        assert columns.min() <= 3 and columns.max() >= 22


def test_zigzag_adds_a_zigzag_between_columns_2_and_25() -> None:
    """(Near the top or bottom edge part of it may leave the field, as in the reference.)"""
    spanned = set()
    for out in _many(ONE, "zigzag", 6):
        added = (out > ONE) & _far_from_ink(ONE)
        assert added.sum() >= 15
        columns = np.flatnonzero((out > ONE).any(axis=0))
        assert columns.min() >= 2 and columns.max() <= 26
        spanned |= set(columns)
        clear = [c for c in range(4, 22) if c not in (10, 11, 12)]  # columns the 1 does not cross
        rows_per_column = [np.flatnonzero(out[:, c] > ONE[:, c]) for c in clear]
        assert max(r.max() - r.min() for r in rows_per_column if len(r)) <= 8  # one band, teeth 2 px high
    assert set(range(2, 26)) <= spanned


def test_canny_edges_turn_a_filled_square_into_its_outline() -> None:
    out = CORRUPTIONS["canny_edges"](SQUARE, _rng())
    assert set(np.unique(out)) == {0, 255}
    assert np.all(out[11:17, 11:17] == 0)  # the interior
    ring = np.zeros((28, 28), bool)
    ring[6:22, 6:22], ring[10:18, 10:18] = True, False
    assert np.all(out[~ring] == 0) and 30 <= np.count_nonzero(out) <= 80
    for side in (out[6:10, 10:18], out[18:22, 10:18], out[10:18, 6:10], out[10:18, 18:22]):
        assert np.count_nonzero(side) >= 6


def test_fog_lays_a_smooth_haze_and_keeps_a_quarter_of_the_contrast() -> None:
    out = corrupt(DIGITS, "fog").astype(float)
    background = DIGITS == 0
    assert out[background].mean() > 40
    for image, digit in zip(out, DIGITS, strict=True):
        haze = np.where(digit == 0, image, np.nan)
        neighbours = np.nanmean(np.abs(np.diff(haze, axis=1)))
        values = image[digit == 0]
        pairs = np.mean(np.abs(values[:, None] - values[None, :]))
        assert neighbours < 0.35 * pairs  # spatially smooth, not noise
        contrast = image[digit == 255].mean() - image[ndimage.binary_dilation(digit > 0, iterations=2)
                                                       & (digit == 0)].mean()
        assert 40 < contrast < 90  # (1 + 3 p) / 4 - 3 p / 4 = 64 grey levels


def test_spatter_adds_grey_mud_blobs() -> None:
    out = corrupt(DIGITS, "spatter")
    mud = (DIGITS == 0) & (out > 0)
    assert np.all((out[mud] >= 50) & (out[mud] <= 64))
    sizes = [np.bincount(ndimage.label(m)[0].ravel())[1:] for m in mud]
    assert all(len(s) >= 1 for s in sizes) and max(s.max() for s in sizes) >= 6
    covered = (DIGITS == 255) & (out < 255)
    assert np.all(out[covered] <= 103)  # ink under mud: x (1 - m) + 63/255 m with m >= 0.8


# ------------------------------------------------------------------------------------- resolve

def test_resolve_all_names_and_duplicates() -> None:
    assert resolve("all") == tuple(NAMES) and len(resolve("all")) == 15
    assert resolve("rotate,shot-noise,rotate") == ("shot_noise", "rotate")
    assert resolve(("canny_edges", "fog", "Glass-Blur")) == ("glass_blur", "fog", "canny_edges")
    assert resolve(" zigzag , dotted_line ") == ("dotted_line", "zigzag")


def test_resolve_unknown_name_is_one_line_listing_the_known() -> None:
    with pytest.raises(InputError) as caught:
        resolve("rotate,blurry")
    message = str(caught.value)
    assert message == "--corruptions: unknown corruption 'blurry'; known: " + ", ".join(NAMES)
    assert "\n" not in message and all(name in message for name in NAMES)
