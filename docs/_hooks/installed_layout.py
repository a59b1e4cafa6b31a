"""MkDocs hook: show mkdocstrings the package tree as it is installed.

pyproject.toml installs the repository's folders benchmark/, models/ and reports/ as
digitbench.benchmark, digitbench.models and digitbench.reports (setuptools ``package-dir``).
mkdocstrings reads source files with griffe, which does not follow that mapping, so this hook
rebuilds the installed tree from symbolic links in ``build/docs-layout/`` before the build starts
(mkdocs.yml points mkdocstrings there). Nothing is copied, so the API pages always show the
checked-out code.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "build" / "docs-layout"


def build_layout() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(LAYOUT, ignore_errors=True)
    for package, folder in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
        target = LAYOUT.joinpath(*package.split("."))
        source = ROOT / folder
        if "." not in package:  # the top package: a real folder, so subpackages can be linked in
            target.mkdir(parents=True)
            for child in source.iterdir():
                if child.suffix == ".py":
                    (target / child.name).symlink_to(child)
        else:
            target.symlink_to(source, target_is_directory=True)


build_layout()  # at import: MkDocs imports hooks while reading its config, before any page
