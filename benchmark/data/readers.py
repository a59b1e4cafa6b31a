"""Readers of digit files with every check a user's file needs: IDX (plain or gzip), Kaggle CSV and
Keras' ``mnist.npz`` layout. IDX and npz images may have any size (:mod:`benchmark.data.prepare`
brings them to 28x28), one size for the training and the test images (:func:`check_one_size`).

Each problem raises :class:`~common.errors.InputError` with one line naming the file and, for
CSV cells, ``line N, column NAME``, lines counted in the file with the header as line 1. The happy
path is vectorised (numpy, pandas with the pyarrow engine); the bad row is located only on failure.
"""

from __future__ import annotations

import csv
import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from digitbench.common.errors import InputError, message_line
from digitbench.models.base import Digits

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
PIXELS = [f"pixel{i}" for i in range(784)]
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801


def find_idx(folder: Path, name: str) -> Path | None:
    """IDX file ``name`` in ``folder``: plain or ``.gz``, also as ``t10k-images.idx3-ubyte``."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, f"{name}.gz", dotted, f"{dotted}.gz"):
        if (folder / candidate).exists():
            return folder / candidate
    return None


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
            raise InputError(f"{path}: corrupt or truncated gzip ({message_line(exc)})") from None
    if not data:
        raise InputError(f"{path}: empty file")
    return data


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes: images ``(n, height, width)`` or labels ``(n,)``."""
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
    if 0 in dims[1:]:
        raise InputError(f"{path}: images are {dims[1]}x{dims[2]} pixels, an empty picture")
    expected, present = math.prod(dims), len(data) - 4 - 4 * ndim
    if present != expected:
        problem = "truncated" if present < expected else "extra data after the last item"
        raise InputError(f"{path}: header says {dims[0]:,} items ({expected:,} bytes) but "
                         f"{present:,} bytes follow: {problem}")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path) -> Digits:
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


NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Keras' ``mnist.npz`` layout: ``x_train`` ``(n, height, width)`` integer pixels 0..255 (a
    trailing channel axis of 1 is dropped), ``y_train`` labels 0..9, and ``x_test`` / ``y_test``
    alike when the file has a test set. No pickle: object arrays are refused."""
    import zipfile

    try:
        with path.open("rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise InputError(f"{path}: empty file")
    if not zipfile.is_zipfile(path):  # np.load would take it for a .npy array or a pickle
        hint = "; this is a single .npy array" if head == b"\x93NUMPY" else ""
        raise InputError(f"{path}: not an npz file (a zip archive of .npy arrays, as numpy.savez "
                         f"writes, expected{hint})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = [n for n in NPZ_ARRAYS[:2] if n not in names]
            if ("x_test" in names) != ("y_test" in names):
                missing.append("y_test" if "x_test" in names else "x_test")
            if missing:
                raise InputError(f"{path}: missing array(s) {', '.join(missing)} (an npz dataset "
                                 f"holds {', '.join(NPZ_ARRAYS)}; the test pair may be left out)")
            parts = ("train", "test") if "x_test" in names else ("train",)
            raw = {part: (npz[f"x_{part}"], npz[f"y_{part}"]) for part in parts}
    except InputError:
        raise
    except ValueError as exc:  # object arrays (would need pickle), or a broken array header
        raise InputError(f"{path}: cannot read arrays without pickle ({message_line(exc)})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: not an npz file ({message_line(exc)})") from None
    arrays: dict[str, np.ndarray] = {}
    for part, (images, labels) in raw.items():
        where = f"{path}: x_{part}"
        if images.ndim == 4 and images.shape[3] == 1:
            images = images[..., 0]
        if images.ndim != 3 or 0 in images.shape[1:]:
            raise InputError(f"{where} has shape {images.shape}, expected (n, height, width)")
        if images.dtype.kind not in "uif" or (images.size and (
                images.min() < 0 or images.max() > 255 or np.any(images != np.round(images)))):
            raise InputError(f"{where}: pixels are not integers in 0..255 (dtype {images.dtype})")
        labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
        if labels.ndim != 1 or len(labels) != len(images):
            raise InputError(f"{path}: y_{part} has shape {labels.shape}, expected ({len(images)},) "
                             f"to match x_{part}")
        bad = np.flatnonzero((labels < 0) | (labels > 9) | (labels != np.round(labels))) \
            if labels.dtype.kind in "uif" else np.array([0])
        if bad.size:
            raise InputError(f"{path}: y_{part} item {bad[0] + 1} (counting from 1): label "
                             f"{labels[bad[0]].item()!r} is not a digit 0..9")
        arrays[f"{part}_images"] = images.astype(np.uint8)
        arrays[f"{part}_labels"] = labels.astype(np.int64)
    check_one_size(path, {f"x_{part}": arrays[f"{part}_images"].shape[1:] for part in raw})
    return arrays


def check_one_size(where: Path | str, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a dataset whose parts hold images of two sizes; ``shapes`` maps each part's name in
    the message (a file name, an array name), training part first, to its ``(height, width)``.

    An IDX file or an npz array holds one image size, so a training and a test set of two sizes
    are almost surely a mistake (784 pixels reshaped to 14x56, the test set of another dataset),
    not pictures to be prepared alike; this holds with or without ``--native-size``.
    """
    (first, size), *others = shapes.items()
    for name, other in others:
        if tuple(other) != tuple(size):
            raise InputError(f"{where}: {first} holds {size[0]}x{size[1]} images, {name} "
                             f"{other[0]}x{other[1]}: one dataset has one image size")


def read_kaggle(path: Path, *, labelled: bool) -> dict[str, np.ndarray]:
    """Kaggle's train.csv (``label,pixel0..pixel783``) or test.csv (pixels only)."""
    values = _read_csv(path, ["label", *PIXELS] if labelled else PIXELS)
    images = values[:, -784:].reshape(-1, 28, 28).astype(np.uint8)
    if not labelled:
        return {"test_images": images}
    return {"train_images": images, "train_labels": values[:, 0].astype(np.int64)}


def _read_csv(path: Path, columns: list[str]) -> np.ndarray:
    """A validated ``(rows, len(columns))`` integer array; columns may come in any order."""
    header = _read_header(path)
    _check_header(path, header, columns)
    limits = np.array([9 if name == "label" else 255 for name in columns])
    if header == columns:  # the usual layout: numpy's fast path first; it declines anything odd
        values = _read_plain(path, limits)
        if values is not None:
            return values
    frame = _read_frame(path, header)[columns]
    return _check_cells(path, frame, limits)


def _read_plain(path: Path, limits: np.ndarray) -> np.ndarray | None:
    """The uint8 cells of a plain, valid file (:mod:`benchmark.data.fastcsv`), else None."""
    from digitbench.benchmark.data.fastcsv import parse_small_ints

    try:
        data = path.read_bytes()
    except OSError:
        return None  # the general reader says what is wrong
    start = data.find(b"\n") + 1
    return parse_small_ints(data, start, len(limits), limits) if start else None


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
        raise InputError(f"{path}: cannot parse CSV ({message_line(exc)})") from None


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


def _quote(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")
