"""The numpy fast path for plain CSV files: right on well-formed files, declines everything else."""

from __future__ import annotations

import numpy as np
import pytest

from digitbench.benchmark.data import fastcsv, readers
from digitbench.benchmark.data.fastcsv import parse_small_ints

LIMITS = np.array([9, 255, 255])


def parse(body: bytes, limits: np.ndarray = LIMITS):
    data = b"label,a,b\n" + body
    return parse_small_ints(data, data.index(b"\n") + 1, len(limits), limits)


@pytest.mark.parametrize("body", [b"1,2,3\n4,255,0", b"1,2,3\n4,255,0\n", b"1,2,3\n4,255,0\n\n"])
def test_plain_rows_with_or_without_final_line_ends(body):
    values = parse(body)
    assert values.dtype == np.uint8
    assert values.tolist() == [[1, 2, 3], [4, 255, 0]]


def test_leading_zeros_and_every_width():
    assert parse(b"007,099,100\n0,9,10\n").tolist() == [[7, 99, 100], [0, 9, 10]]


@pytest.mark.parametrize("body", [
    b"1,2,3\n\n4,5,6\n",   # a blank line inside
    b"1,,3\n",             # an empty cell
    b"1,2,3,4\n",          # too many cells
    b"1,2\n",              # too few
    b"1,2,256\n",          # above the pixel limit
    b"10,2,25\n",          # above the label limit
    b"1,2,3\r\n",          # CRLF
    b"1,2,0003\n",         # four digits
    b"1,-2,3\n", b"1,2.0,3\n", b"1,x,3\n", b"1, 2,3\n",
    b"",                   # no rows
    b"1,2,3\n4,5\n6,7,8,9\n",  # the right number of cells in all, in the wrong rows
])
def test_anything_else_is_left_to_the_general_reader(body):
    assert parse(body) is None


def test_blocks_and_threads_agree_with_the_general_reader(tmp_path, monkeypatch):
    """Many blocks (small BLOCK_BYTES), parsed by several threads, give the general reader's array."""
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, (500, 785))
    values[:, 0] %= 10
    values[rng.random(values.shape) < 0.6] = 0  # digit-like: mostly zeros
    path = tmp_path / "train.csv"
    header = "label," + ",".join(readers.PIXELS)
    path.write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in values) + "\n")
    monkeypatch.setattr(fastcsv, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(fastcsv, "THREADS", 3)
    fast = readers.read_kaggle(path, labelled=True)
    np.testing.assert_array_equal(fast["train_labels"], values[:, 0])
    np.testing.assert_array_equal(fast["train_images"], values[:, 1:].reshape(-1, 28, 28))
    monkeypatch.setattr(readers, "_read_plain", lambda path, limits: None)
    general = readers.read_kaggle(path, labelled=True)
    for name in ("train_images", "train_labels"):
        assert fast[name].dtype == general[name].dtype
        np.testing.assert_array_equal(fast[name], general[name])


def test_plain_files_skip_pandas(tmp_path, monkeypatch):
    path = tmp_path / "test.csv"
    path.write_text(",".join(readers.PIXELS) + "\n" + ",".join(["7"] * 784) + "\n")

    def no_pandas(*args, **kwargs):
        raise AssertionError("the general reader ran on a plain file")

    monkeypatch.setattr(readers, "_read_frame", no_pandas)
    images = readers.read_kaggle(path, labelled=False)["test_images"]
    assert images.shape == (1, 28, 28) and (images == 7).all()
