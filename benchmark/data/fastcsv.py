"""A fast path for plain integer CSV files such as Kaggle's train.csv, in numpy alone.

:func:`parse_small_ints` reads data rows made only of digits, commas and ``\\n`` line ends, every
cell an unsigned integer of at most three digits. Anything else (CRLF, blank lines, empty cells,
signs, decimals, text, a ragged row, a value above its limit) makes it return ``None``, and the
caller falls back to the general reader, which finds the bad cell and names it. So this module only
has to be right about well-formed files, and it never decides what an error message says.

It works on blocks of whole lines (about 256 KiB, so the temporaries stay in the CPU cache) with a
few vectorised passes each: a cell's value is read at its last digit from that digit and the two
before it; blocks are parsed by a few threads side by side (numpy releases the GIL in its loops).
A 42,000-row train.csv (77 MB) takes about 0.3 CPU-seconds here, parsed and checked, where the
general reader (pandas, pyarrow engine) took about 3 s (``benchmarks/loading.py``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK_BYTES = 1 << 18
_ZERO, _COMMA, _NEWLINE = 48, 44, 10
#: Threads parsing blocks side by side (numpy releases the GIL in its loops).
THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def parse_small_ints(data: bytes, start: int, columns: int,
                     limits: np.ndarray) -> np.ndarray | None:
    """The ``(rows, columns)`` uint8 values of the data rows in ``data[start:]``, or None.

    ``limits`` holds the largest value allowed in each column (at most 255). The last line may lack
    its ``\\n``. None means "not a plain file, or not valid": use the general reader.
    """
    end = len(data)
    while end > start and data[end - 1] == _NEWLINE:  # trailing line ends
        end -= 1
    if end <= start:
        return None
    blocks, rows, pos = [], 0, start  # (bytes, first byte, end byte, first row): no copy of data
    while pos < end:
        cut = data.find(b"\n", min(pos + BLOCK_BYTES, end), end + 1) + 1
        if cut:
            blocks.append((data, pos, cut, rows))
        else:  # the last line has no line end: copy the last block, with one
            blocks.append((data[pos:end] + b"\n", 0, end + 1 - pos, rows))
            cut = end + 1
        rows += blocks[-1][0].count(b"\n", blocks[-1][1], blocks[-1][2])
        pos = cut
    out = np.empty((rows, columns), np.uint8)
    limits = np.asarray(limits, np.uint16)

    def parse(block: tuple[bytes, int, int, int]) -> bool:
        source, first, cut, row = block
        values = _block(np.frombuffer(source, np.uint8, count=cut - first, offset=first), columns)
        if values is None or (values > limits).any():
            return False
        out[row:row + len(values)] = values  # as many rows as lines: _block checked every row
        return True

    workers = min(THREADS, len(blocks))
    if workers < 2:
        ok = all(map(parse, blocks))
    else:
        with ThreadPoolExecutor(workers) as pool:  # numpy releases the GIL in these loops
            ok = all(pool.map(parse, blocks))
    return out if ok else None


def _block(block: np.ndarray, columns: int) -> np.ndarray | None:
    """The ``(lines, columns)`` uint16 values of a block of whole ``\\n``-ended lines, or None."""
    buf = np.empty(len(block) + 3, np.uint8)  # three separators in front, for the shifted reads
    buf[:3] = _COMMA
    buf[3:] = block
    digit = buf - np.uint8(_ZERO)  # separators wrap around to 196 and above
    is_digit = digit < 10
    last = is_digit[3:].copy()
    last[:-1] &= ~is_digit[4:]  # the last digit of a cell: the next byte is a separator
    at = np.flatnonzero(last)  # positions in block; view[k:][at] reads k - 3 bytes from there
    if len(at) != len(block) - np.count_nonzero(is_digit) or len(at) % columns:
        return None  # an empty cell (two separators in a row), or a ragged block
    tens = is_digit[2:].take(at)
    hundreds = is_digit[1:].take(at)
    hundreds &= tens
    if (is_digit.take(at) & hundreds).any():
        return None  # a cell of four digits or more
    layout = buf[4:].take(at).reshape(-1, columns)  # the separator after each cell
    if (layout[:, :-1] != _COMMA).any() or (layout[:, -1] != _NEWLINE).any():
        return None  # other characters, CR line ends, or a row with too many or too few cells
    value = digit[3:].take(at).astype(np.uint16)
    value += (digit[2:].take(at) * tens).astype(np.uint16) * np.uint16(10)
    value += (digit[1:].take(at) * hundreds).astype(np.uint16) * np.uint16(100)
    return value.reshape(-1, columns)
