"""What a result row records about where it came from: package versions, machine, git revision,
the command (without the passwords of the URLs in it)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "digitbench", "numpy", "scipy", "pandas", "scikit-learn", "tensorflow-cpu", "tensorflow",
    "keras", "keras-tuner", "optuna", "mlxtend", "threadpoolctl",
    "torch", "jax", "jaxlib",  # the optional Keras backends (digitbench[torch], digitbench[jax])
)


def digitbench_version() -> str:
    """digitbench's installed version (``0+unknown`` in a source tree that was never installed)."""
    try:
        return version("digitbench")
    except PackageNotFoundError:
        return "0+unknown"


@cache
def versions() -> dict[str, str]:
    """Python and the installed versions of the packages that shape results (absent ones left out)."""
    return package_versions(PACKAGES)


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Python and the installed versions of ``names`` (absent ones left out)."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def machine() -> dict[str, object]:
    """CPU model, usable cores, memory and platform of this machine."""
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


@cache
def git_rev() -> str:
    """digitbench's own git revision, ``+dirty`` when its tracked files are modified."""
    source = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}+dirty" if dirty else rev


#: ``scheme://user:password@host``: the password of a URL given on the command line (``--mlflow``,
#: ``--storage``, ``--cluster``).
_PASSWORD = re.compile(r"(://[^/@\s:]+):[^@\s/]+@")


def without_passwords(command: str) -> str:
    """``command`` with each URL's password written ``***``, as rows and trackers record it."""
    return _PASSWORD.sub(r"\1:***@", command)
