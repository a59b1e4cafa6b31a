"""Flags that more than one command takes, declared once (standard library only: the CLI builds
its parser from this at start)."""

from __future__ import annotations

import argparse


def add_execution_flags(parser: argparse.ArgumentParser, jobs: str) -> None:
    """``--threads``, ``--workers`` and ``--cluster``: where the command's ``jobs`` run."""
    parser.add_argument("--threads", type=int,
                        help="threads per worker process (default: the cores shared out among --workers)")
    parser.add_argument("--workers", type=int,
                        help=f"worker processes on this machine that run {jobs} (default: one per core, "
                             "each with 1 thread; 1: everything in this process, a fixed order)")
    parser.add_argument("--cluster", metavar="tcp://HOST:PORT",
                        help=f"run {jobs} on the workers of this Dask scheduler instead "
                             "(pip install 'digitbench[dask]'; start workers with --nthreads 1)")


def add_model_path_flag(parser: argparse.ArgumentParser, default: list | None = None) -> None:
    """``--model-path``: a plug-in model class, from an importable module or a ``.py`` file."""
    parser.add_argument("--model-path", action="append", default=default,
                        metavar="MODULE:CLASS|FILE.py:CLASS",
                        help="register an outside model class: package.module:Class (installed, or a "
                             "module in the current folder) or path/to/file.py:Class (repeatable)")
