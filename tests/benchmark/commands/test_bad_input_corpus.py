"""The bad-input corpus: every distinct bad input a user can hand digitbench, through the CLI.

Each case builds its input in a fresh folder, runs ``digitbench`` in-process and checks the promise:
exit status 2, exactly one line on stderr naming the problem and the place, no traceback, and no
run folder or output file left behind. Inputs that are merely unusual are accepted.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx

from digitbench.benchmark.commands.main import main

N_TRAIN, N_TEST = 60, 20
N_NPZ = 200  # enough for a stratified test hold-out and validation part of 10 classes
HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))


def _digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10


def idx_folder(folder: Path, **change: Callable[[Path], None]) -> Path:
    """A valid IDX folder; ``change[name](path)`` then spoils one of its four files."""
    folder.mkdir()
    for part, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images, labels = _digits(n)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels)
    for name, spoil in change.items():
        spoil(folder / f"{name.replace('_', '-')}-idx3-ubyte.gz" if "images" in name
              else folder / f"{name.replace('_', '-')}-idx1-ubyte.gz")
    return folder


def csv_rows(n: int = N_TRAIN) -> list[str]:
    images, labels = _digits(n)
    return [f"{label}," + ",".join(map(str, image.ravel())) for image, label in zip(images, labels,
                                                                                     strict=True)]


def kaggle_folder(folder: Path, text: str | bytes) -> Path:
    folder.mkdir()
    path = folder / "train.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


def with_cell(row: int, col: int, value: str) -> str:
    """A train.csv whose data row ``row`` (0-based) has ``value`` in field ``col``."""
    rows = csv_rows()
    fields = rows[row].split(",")
    fields[col] = value
    rows[row] = ",".join(fields)
    return "\n".join([HEADER, *rows]) + "\n"


@dataclass
class Case:
    """``make(tmp)`` returns the extra CLI arguments (after ``run --models logreg --out OUT``, or a
    whole argument list when ``command`` is given); ``expect`` is what the error line must contain."""

    make: Callable[[Path], list[str]]
    expect: str
    command: bool = False


def idx_case(expect: str, **change: Callable[[Path], None]) -> Case:
    return Case(lambda tmp: ["--dataset", f"idx:{idx_folder(tmp / 'idx', **change)}"], expect)


def csv_case(text: str | bytes | Callable[[], str | bytes], expect: str) -> Case:
    return Case(lambda tmp: ["--dataset",
                             f"kaggle:{kaggle_folder(tmp / 'kg', text() if callable(text) else text)}"],
                expect)


def picture_folder(folder: Path, spoil: Callable[[Path], object] = lambda root: None) -> Path:
    """A valid ``folder:`` dataset (train/<digit>/ with ten 16x16 pictures a digit, test/<digit>/
    with two); ``spoil(folder)`` then breaks it."""
    from PIL import Image

    for part, n in (("train", 100), ("test", 20)):
        images, labels = _digits(n)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            (folder / part / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[:16, :16]).save(folder / part / str(label) / f"{i}.png")
    spoil(folder)
    return folder


def folder_case(expect: str, spoil: Callable[[Path], object], *flags: str) -> Case:
    return Case(lambda tmp: ["--dataset", f"folder:{picture_folder(tmp / 'pics', spoil)}", *flags], expect)


def _emptied(path: Path) -> None:
    """Every file under ``path`` removed; the folders stay."""
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        file.unlink()


def npz_case(expect: str, write: Callable[[Path], object]) -> Case:
    def make(tmp: Path) -> list[str]:
        path = tmp / "digits.npz"
        write(path)
        return ["--dataset", f"npz:{path}"]
    return Case(make, expect)


def _npz(path: Path, **change: object) -> None:
    """A valid npz dataset (16x16 images, no test pair) with ``change``'s arrays put in or, when
    None, left out."""
    images, labels = _digits(N_NPZ)
    arrays = {"x_train": images[:, :16, :16], "y_train": labels} | change
    np.savez(path, **{name: array for name, array in arrays.items() if array is not None})


def _object_npz(path: Path) -> None:
    """An npz whose x_train is an object array: reading it back needs pickle."""
    images, labels = _digits(N_NPZ)
    np.savez(path, x_train=np.array([*images[:, :16, :16], None], dtype=object), y_train=labels)


def config_case(toml: str, expect: str) -> Case:
    def make(tmp: Path) -> list[str]:
        path = tmp / "run.toml"
        path.write_text(toml)
        return ["--config", str(path)]
    return Case(make, expect)


def _truncate_gzip(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _rewrite(path: Path, array: np.ndarray, **kw: object) -> None:
    write_idx(path, array, **kw)


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _zip(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("coef.npy", b"\x93NUMPY")
    return path


def _logreg_file(path: Path, write: Callable[[Path], None]) -> Path:
    """A model file naming ``logreg`` in its ``digitbench.json``, its model part written by ``write``."""
    import json
    import zipfile

    write(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("digitbench.json", json.dumps({
            "format": "digitbench-model", "format_version": 1, "model": "logreg",
            "class": "digitbench.models.baselines:LogisticRegressionModel", "params": {}}))
    return path


def _old_npz(path: Path) -> None:
    """A scikit-learn model as digitbench saved them before skops: arrays plus ``estimator.json``."""
    import zipfile

    np.savez_compressed(path, **{"estimator/coef_": np.zeros((10, 784))})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("estimator.json", '{"sklearn": "1.9.1", "params": {}, "parts": {}}')


def _untrusted_skops(path: Path) -> None:
    """A skops file whose "estimator" is ``os.system``: a type no digitbench model holds."""
    import os

    import skops.io

    skops.io.dump({"format": "digitbench-sklearn", "sklearn": "1.9.1", "params": {},
                   "parts": {"estimator_": os.system}}, path)


def _png(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _truncated_png(path: Path) -> Path:
    digit = np.full((40, 40), 255)
    digit[10:30, 18:22] = 0
    data = _png(path, digit).read_bytes()
    return _file(path, data[: len(data) // 2])


def _predict(tmp: Path, *, model: Path | None = None, image: Path | None = None) -> list[str]:
    """``predict`` with a fine picture and a (nonexistent, never reached) model unless given."""
    if image is None:
        digit = np.full((40, 40), 255)
        digit[8:32, 18:23] = 0                     # a dark "1" on white paper
        image = _png(tmp / "one.png", digit)
    return ["predict", "--model-file", str(model or tmp / "never-loaded.skops"), str(image)]


def _submit_with_labelled_test(tmp: Path) -> list[str]:
    folder = kaggle_folder(tmp / "kg", "\n".join([HEADER, *csv_rows()]) + "\n")
    (folder / "test.csv").write_text("\n".join([HEADER, *csv_rows(N_TEST)]) + "\n")
    return ["submit", f"kaggle:{folder}", "--model", "logreg", "--out", str(tmp / "run" / "submission.csv")]


CORPUS: dict[str, Case] = {
    # IDX files
    "idx truncated gzip": idx_case("train-images-idx3-ubyte.gz: corrupt or truncated gzip",
                                   train_images=_truncate_gzip),
    "idx wrong magic": idx_case("wrong IDX magic number", train_labels=lambda p: _rewrite(
        p, np.arange(N_TRAIN) % 10, magic=0x0803)),
    "idx zero-pixel dimension": idx_case(
        "t10k-images-idx3-ubyte.gz: images are 0x28 pixels, an empty picture",
        t10k_images=lambda p: _rewrite(p, np.zeros((N_TEST, 0, 28), np.uint8))),
    "idx blank images of another size": idx_case("t10k-images-idx3-ubyte.gz: image 1: no digit found",
                                                 train_images=lambda p: _rewrite(p, np.pad(
                                                     _digits(N_TRAIN)[0], ((0, 0), (2, 2), (2, 2)))),
                                                 t10k_images=lambda p: _rewrite(
                                                     p, np.zeros((N_TEST, 32, 32), np.uint8))),
    "idx train and test images of two sizes": idx_case(
        "idx: train-images-idx3-ubyte.gz holds 14x56 images, t10k-images-idx3-ubyte.gz 28x28: one "
        "dataset has one image size",
        train_images=lambda p: _rewrite(p, _digits(N_TRAIN)[0].reshape(N_TRAIN, 14, 56))),
    "idx label 10": idx_case("label 10", train_labels=lambda p: _rewrite(p, np.full(N_TRAIN, 10))),
    "idx count mismatch": idx_case(f"holds {N_TRAIN} images but", train_labels=lambda p: _rewrite(
        p, np.arange(N_TRAIN - 1) % 10)),
    "idx truncated body": idx_case("header says", t10k_images=lambda p: _rewrite(
        p, _digits(N_TEST)[0], cut=100)),
    "idx empty file": idx_case("t10k-labels-idx1-ubyte.gz: empty file",
                               t10k_labels=lambda p: p.write_bytes(gzip.compress(b""))),
    "idx folder instead of file": idx_case("is a folder, expected a file",
                                           train_images=_replace_with_folder),
    "idx missing folder": Case(lambda tmp: ["--dataset", f"idx:{tmp / 'nowhere'}"], "no such folder"),
    # Kaggle CSV files
    "csv pixel 256": csv_case(lambda: with_cell(4, 101, "256"), "line 6, column pixel100"),
    "csv pixel -1": csv_case(lambda: with_cell(0, 1, "-1"), "line 2, column pixel0"),
    "csv NaN cell": csv_case(lambda: with_cell(2, 5, "NaN"), "line 4, column pixel4"),
    "csv empty cell": csv_case(lambda: with_cell(2, 5, ""), "line 4, column pixel4"),
    "csv non-numeric cell": csv_case(lambda: with_cell(9, 784, "abc"), "line 11, column pixel783"),
    "csv label 10": csv_case(lambda: with_cell(3, 0, "10"), "line 5, column label"),
    "csv empty file": csv_case("", "train.csv: empty file"),
    "csv header only": csv_case(HEADER + "\n", "header only, no data rows"),
    "csv extra column": csv_case(lambda: "\n".join([HEADER + ",extra", *(r + ",0" for r in csv_rows())]),
                                 "header has 786 columns, expected 785"),
    "csv duplicate header": csv_case(lambda: "\n".join([HEADER.replace("pixel5,", "pixel4,", 1),
                                                        *csv_rows()]), "duplicate column 'pixel4'"),
    "csv ragged row": csv_case(lambda: "\n".join([HEADER, *csv_rows()[:5], "3,0,0", *csv_rows()[5:]]),
                               "line 7 has 3 fields"),
    "csv UTF-16 with byte-order mark": csv_case(lambda: "\n".join([HEADER, *csv_rows()]).encode("utf-16"),
                                                "not a UTF-8 text CSV file"),
    "csv binary garbage": csv_case(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 50, "train.csv: not a UTF-8 text"),
    "csv missing train.csv": Case(lambda tmp: ["--dataset", f"kaggle:{(tmp / 'kg').mkdir() or tmp / 'kg'}"],
                                  "train.csv: no such file"),
    # picture folders (folder:DIR)
    "folder without train/": folder_case("pics: no train/ folder",
                                         lambda root: (root / "train").rename(root / "training")),
    "folder label named cat": folder_case("pics/train/cat: folder name 'cat' is not a digit label 0..9",
                                          lambda root: (root / "train" / "cat").mkdir()),
    "folder file directly in train/": folder_case(
        "pics/train/notes.txt: a file directly in train/",
        lambda root: (root / "train" / "notes.txt").write_text("my digits\n")),
    "folder without pictures": folder_case("pics/train: no pictures",
                                           lambda root: _emptied(root / "train")),
    "folder corrupt picture": folder_case(
        "pics/train/3/bad.png: cannot read image",
        lambda root: _file(root / "train" / "3" / "bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)),
    "folder zero-byte picture": folder_case("pics/test/7/empty.png: empty file",
                                            lambda root: _file(root / "test" / "7" / "empty.png", b"")),
    "folder inside a label folder": folder_case("pics/train/2/more: a folder inside a label folder",
                                                lambda root: (root / "train" / "2" / "more").mkdir()),
    "folder blank picture": folder_case("pics/train/5/blank.png: no digit found", lambda root: _png(
        root / "train" / "5" / "blank.png", np.full((20, 20), 255))),
    "folder of two sizes with --native-size": folder_case(
        "pics/train/9/wide.png: 16x24 pixels, but", lambda root: _png(
            root / "train" / "9" / "wide.png", np.zeros((16, 24))), "--native-size"),
    # Keras' mnist.npz layout (npz:FILE)
    "npz not an npz file": npz_case("digits.npz: not an npz file",
                                    lambda p: p.write_text("x_train,y_train\n1,2\n")),
    "npz a single .npy array": npz_case("digits.npz: not an npz file (a zip archive of .npy arrays, as "
                                        "numpy.savez writes, expected; this is a single .npy array)",
                                        lambda p: p.write_bytes(_npy_bytes(np.zeros((3, 28, 28), np.uint8)))),
    "npz missing y_train": npz_case("digits.npz: missing array(s) y_train", lambda p: _npz(p, y_train=None)),
    "npz x_test without y_test": npz_case("digits.npz: missing array(s) y_test", lambda p: _npz(
        p, x_test=np.zeros((N_TEST, 16, 16), np.uint8))),
    "npz label 10": npz_case("digits.npz: y_train item 5 (counting from 1): label 10 is not a digit 0..9",
                             lambda p: _npz(p, y_train=np.where(np.arange(N_NPZ) == 4, 10, 1))),
    "npz x_train of 2 dimensions": npz_case(
        f"digits.npz: x_train has shape ({N_NPZ}, 784), expected (n, height, width)",
        lambda p: _npz(p, x_train=_digits(N_NPZ)[0].reshape(N_NPZ, 784))),
    "npz pixels scaled to 0..1": npz_case("digits.npz: x_train: pixels are not integers in 0..255",
                                          lambda p: _npz(p, x_train=_digits(N_NPZ)[0] / 255.0)),
    "npz labels one short": npz_case(f"digits.npz: y_train has shape ({N_NPZ - 1},), expected "
                                     f"({N_NPZ},)", lambda p: _npz(p, y_train=np.arange(N_NPZ - 1) % 10)),
    "npz x_train and x_test of two sizes": npz_case(
        "digits.npz: x_train holds 16x16 images, x_test 28x28: one dataset has one image size",
        lambda p: _npz(p, x_test=_digits(N_TEST)[0], y_test=np.arange(N_TEST) % 10)),
    "npz object array needing pickle": npz_case("digits.npz: cannot read arrays without pickle", _object_npz),
    "npz missing file": npz_case("digits.npz: no such file", lambda p: None),
    # TOML config
    "toml syntax error": config_case("seeds = = 3\n", "run.toml"),
    "toml unknown key": config_case("seedz = 3\n", "seedz"),
    "toml wrong type": config_case('seeds = "three"\n', "seeds"),
    "toml missing file": Case(lambda tmp: ["--config", str(tmp / "absent.toml")], "absent.toml"),
    # CLI flags
    "unknown model": Case(lambda tmp: ["--models", "logreg,resnet-9000"], "resnet-9000"),
    "unknown dataset spec": Case(lambda tmp: ["--dataset", "emnist-letters"], "emnist-letters"),
    "negative budget": Case(lambda tmp: ["--budget", "-5"], "budget"),
    "zero seeds": Case(lambda tmp: ["--seeds", "0"], "seeds"),
    "zero threads": Case(lambda tmp: ["--threads", "0"], "threads"),
    "zero study seeds": Case(lambda tmp: ["--study-seeds", "0"], "--study-seeds"),
    "zero target checks": Case(lambda tmp: ["--target", "0.9", "--target-checks", "0"], "--target-checks"),
    "target checks without a target": Case(lambda tmp: ["--target-checks", "2"],
                                           "--target-checks: needs a target accuracy (--target ACC)"),
    "non-integer trials": Case(lambda tmp: ["--trials", "many"], "--trials"),
    "unknown tuner": Case(lambda tmp: ["--tuner", "grid-search"], "grid-search"),
    "unknown objective": Case(lambda tmp: ["--objectives", "accuracy,energy"], "--objectives: expected "
                              "one of accuracy, fit-cpu, predict-ms, got 'energy'"),
    "objective named twice": Case(lambda tmp: ["--objectives", "accuracy,accuracy"],
                                  "--objectives: an objective is named twice"),
    "first objective a cost": Case(lambda tmp: ["--objectives", "fit-cpu,accuracy"],
                                   "--objectives: the first objective must be accuracy"),
    "three objectives": Case(lambda tmp: ["--objectives", "accuracy,fit-cpu,predict-ms"],
                             "--objectives: expected accuracy and at most one cost"),
    "two objectives for keras-tuner": Case(
        lambda tmp: ["--tuner", "optuna,keras-tuner", "--objectives", "accuracy,fit-cpu"],
        "--objectives accuracy,fit-cpu: keras-tuner optimises one objective"),
    "a front cost other than the objective's": Case(
        lambda tmp: ["--tuner", "optuna", "--objectives", "accuracy,predict-ms", "--cost", "fit"],
        "--objectives accuracy,predict-ms: the front is of predict-ms, but --cost is fit"),
    "train size zero": Case(lambda tmp: ["--train-sizes", "0,500"],
                            "--train-sizes: expected auto or whole numbers of at least 1, got '0'"),
    "train size text": Case(lambda tmp: ["--train-sizes", "500,lots"], "got 'lots'"),
    "train size empty": Case(lambda tmp: ["--train-sizes", ""],
                             "--train-sizes: expected auto or whole numbers of at least 1, got ''"),
    "train size above the training part": Case(
        lambda tmp: ["--train-sizes", "500,100000"],
        "--train-sizes on mnist-5k: 100,000 is larger than the training part (4,000 images)"),
    "train size under 10 a class": Case(lambda tmp: ["--train-sizes", "50,500"],
                                        "50 images leave 5 of the rarest class, fewer than 10 a class"),
    "more folds than a class has images": Case(
        lambda tmp: ["--tuner", "optuna", "--cv", "1000"],
        "--cv 1000: mnist-5k has 400 training images of class 0, its rarest, fewer than the 1,000 folds "
        "need"),
    "tune subsample below the folds": Case(
        lambda tmp: ["--tuner", "optuna", "--tune-subsample", "10"],
        "--tune-subsample 10: 10 of the 4,000 training images of mnist-5k may hold as few as 1 of a "
        "class, fewer than the 5 folds of --cv 5 need (5 of every class)"),
    "tune subsample below the classes": Case(
        lambda tmp: ["--tuner", "optuna", "--cv", "1", "--tune-subsample", "9"],
        "--tune-subsample 9: 9 of the 3,600 training images of mnist-5k may hold as few as 0 of a class, "
        "fewer than a trial needs (1 of every class)"),
    "tune subsample leaving out fewer images than classes": Case(
        lambda tmp: ["--tuner", "optuna", "--cv", "1", "--tune-subsample", "3595"],
        "--tune-subsample 3595: leaves out 5 of the 3,600 training images of mnist-5k, fewer than its "
        "10 classes"),
    "seeds beyond the bound": Case(lambda tmp: ["--seeds", "100000000000"],
                                   "--seeds: expected a whole number from 1 to 1,000, got 100000000000"),
    "study seeds beyond the bound": Case(lambda tmp: ["--tuner", "optuna", "--study-seeds", "1001"],
                                         "--study-seeds: expected a whole number from 1 to 1,000, got 1001"),
    "unknown corruption": Case(lambda tmp: ["--corruptions", "rotate,smudge"],
                               "--corruptions: unknown corruption 'smudge'; known: shot_noise, "
                               "impulse_noise"),
    "bad --model-path": Case(lambda tmp: ["--model-path", "no_such_module:Model"], "no_such_module"),
    # --params JSON
    "params not JSON": Case(lambda tmp: ["--params", "{C: 1}"], "--params"),
    "params not an object": Case(lambda tmp: ["--params", "[1, 2]"], "--params"),
    "params unknown name": Case(lambda tmp: ["--params", '{"gamma_typo": 1}'], "gamma_typo"),
    "params text for a number": Case(lambda tmp: ["--params", '{"C": "abc"}'],
                                     "--params: C of logreg: expected a number, got 'abc'"),
    "params true for a number": Case(lambda tmp: ["--params", '{"C": true}'], "C of logreg"),
    "params outside the choices": Case(lambda tmp: ["--models", "lenet-relu",
                                                    "--params", '{"kernel_size": 4}'],
                                       "kernel_size of lenet-relu: expected one of 3, 5, got 4"),
    "params fraction for a whole number": Case(lambda tmp: ["--models", "lenet-relu",
                                                            "--params", '{"epochs": 2.5}'],
                                               "epochs of lenet-relu: expected a whole number"),
    "params a C no solver takes": Case(lambda tmp: ["--models", "svm-rbf", "--params", '{"C": -1}'],
                                       "--params: svm-rbf: The 'C' parameter of SVC must be a float in "
                                       "the range (0.0, inf"),
    "params a variant's fixed value": Case(lambda tmp: ["--models", "lenet-relu",
                                                        "--params", '{"activation": "tanh"}'],
                                           "--params: activation fixed by the variant(s) lenet-relu"),
    "params negative epochs": Case(lambda tmp: ["--models", "lenet-relu", "--params", '{"epochs": -3}'],
                                   "--params: lenet-relu: epochs must be at least 1, got -3"),
    "params a dropout of one": Case(lambda tmp: ["--models", "lenet-tanh", "--params", '{"dropout": 1.0}'],
                                    "--params: lenet-tanh: dropout must be at least 0.0 and at most 0.99"),
    # Optuna's storage
    "storage of an unknown dialect": Case(lambda tmp: ["--tuner", "optuna", "--storage", "nonsense://x"],
                                          "--storage nonsense://x: not a database URL"),
    "storage unreachable": Case(lambda tmp: ["--tuner", "optuna", "--storage",
                                             f"sqlite:///{tmp / 'no-such-folder' / 'o.db'}"],
                                "o.db: cannot connect"),
    # the run folder and where the jobs run
    "out names a file": Case(lambda tmp: ["--out", str(_file(tmp / "results", b"x"))],
                             "is a file, expected a folder"),
    "out inside a file": Case(lambda tmp: ["--out", str(_file(tmp / "results", b"x") / "run")],
                              "is a file, expected a folder"),
    "cluster not an address": Case(lambda tmp: ["--cluster", "localhost"], "--cluster: expected a Dask"),
    "cluster unreachable": Case(lambda tmp: ["--cluster", "tcp://127.0.0.1:9"], "--cluster tcp://127.0.0.1:9"),
    # saved model files (predict --model-file); the picture is fine
    "model file missing": Case(lambda tmp: _predict(tmp, model=tmp / "absent.keras"), "no such model file",
                               command=True),
    "model file is a folder": Case(lambda tmp: _predict(tmp, model=_folder(tmp / "m.keras")),
                                   "is a folder, expected a model file", command=True),
    "model file not a zip": Case(lambda tmp: _predict(tmp, model=_file(tmp / "m.keras", b"not a model")),
                                 "not a digitbench model file", command=True),
    "model file without header": Case(lambda tmp: _predict(tmp, model=_zip(tmp / "m.skops")),
                                      "a zip archive without digitbench.json", command=True),
    "model file in the old .npz format": Case(
        lambda tmp: _predict(tmp, model=_logreg_file(tmp / "old.npz", _old_npz)),
        "old.npz: a scikit-learn model file in the .npz format of earlier digitbench versions",
        command=True),
    "model file with untrusted types": Case(
        lambda tmp: _predict(tmp, model=_logreg_file(tmp / "m.skops", _untrusted_skops)),
        "m.skops: refused, it holds types a digitbench scikit-learn model never holds", command=True),
    # picture files (predict IMAGE)
    "image missing": Case(lambda tmp: _predict(tmp, image=tmp / "absent.png"), "absent.png: no such file",
                          command=True),
    "image empty": Case(lambda tmp: _predict(tmp, image=_file(tmp / "empty.png", b"")),
                        "empty.png: empty file", command=True),
    "image not an image": Case(lambda tmp: _predict(tmp, image=_file(tmp / "digit.png", b"%PDF-1.4 x" * 9)),
                               "digit.png: not an image file", command=True),
    "image truncated": Case(lambda tmp: _predict(tmp, image=_truncated_png(tmp / "cut.png")), "cut.png",
                            command=True),
    "image blank": Case(lambda tmp: _predict(tmp, image=_png(tmp / "blank.png", np.full((40, 40), 255))),
                        "blank.png: no digit found", command=True),
    # Kaggle submission
    "submit test.csv with a label column": Case(_submit_with_labelled_test, "test.csv: has a 'label' column",
                                                command=True),
    "submit with MNIST images added": Case(lambda tmp: ["submit", "kaggle:x", "--model", "logreg",
                                                        "--data-dir", str(tmp), "--out",
                                                        str(tmp / "run" / "s.csv")],
                                           "--data-dir refused", command=True),
    # report
    "report of a folder without results": Case(
        lambda tmp: ["report", str((tmp / "empty").mkdir() or tmp / "empty")], "results.csv", command=True),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_input_gives_one_line_and_exit_2(name: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    case = CORPUS[name]
    out = tmp_path / "run"
    args = case.make(tmp_path)
    argv = args if case.command else ["run", "--models", "logreg", "--out", str(out), *args]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("digitbench: error: ") or lines[0].startswith("digitbench run: error: "), err
    assert "Traceback" not in err
    assert case.expect in lines[0], lines[0]
    assert not out.exists()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, "the failed command left files behind"


def run_cli(argv: list[str]) -> int | str | None:
    """``main``'s exit status, also where argparse rejects a flag itself (through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_the_folder_and_npz_cases_spoil_inputs_that_are_otherwise_fine(tmp_path: Path) -> None:
    """Each folder: and npz: case above breaks one thing: unspoiled, the same inputs load."""
    from digitbench.benchmark.data.datasets import load_split

    split = load_split(f"folder:{picture_folder(tmp_path / 'pics')}", cache_dir=tmp_path / "cache")
    assert split.test_split == "official test set (20 images)" and split.preparation.startswith(
        "read at 16x16 and prepared")
    assert load_split(f"folder:{tmp_path / 'pics'}", cache_dir=tmp_path / "cache",
                      native_size=True).image_shape == (16, 16)
    _npz(tmp_path / "digits.npz")
    split = load_split(f"npz:{tmp_path / 'digits.npz'}", cache_dir=tmp_path / "cache")
    assert len(split.train) + len(split.val) + len(split.test) == N_NPZ


# -- unusual but fine -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["crlf", "no trailing newline", "float pixels", "utf-8 bom"])
def test_unusual_csv_is_accepted(variant: str, tmp_path: Path) -> None:
    from digitbench.benchmark.data.readers import read_kaggle

    rows = csv_rows()
    if variant == "float pixels":
        rows = [",".join([r.split(",")[0], *(f"{int(v)}.0" for v in r.split(",")[1:])]) for r in rows]
    newline = "\r\n" if variant == "crlf" else "\n"
    text = newline.join([HEADER, *rows]) + ("" if variant == "no trailing newline" else newline)
    path = tmp_path / "train.csv"
    path.write_bytes(text.encode("utf-8-sig" if variant == "utf-8 bom" else "utf-8"))
    arrays = read_kaggle(path, labelled=True)
    images, labels = _digits(N_TRAIN)
    assert np.array_equal(arrays["train_images"], images)
    assert np.array_equal(arrays["train_labels"], labels)

