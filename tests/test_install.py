"""digitbench as a user installs it: a wheel (not the editable install the tests run on) in a fresh
virtual environment, used from a project folder that has packages of its own called ``models`` and
``reports`` on ``PYTHONPATH``, with a plug-in file beside them.

The fresh environment reuses the test environment's dependencies (a ``.pth`` file naming the
site-packages folders on its path) so that nothing is downloaded; digitbench itself comes from the
wheel alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
with open(ROOT / "pyproject.toml", "rb") as _f:  # the folders the wheel is made of, and its metadata
    SOURCES = (*tomllib.load(_f)["tool"]["setuptools"]["package-dir"].values(), "pyproject.toml", "README.md")

PLUGIN = '''import numpy as np
from digitbench import DigitModel


class Majority(DigitModel):
    """Predicts the most frequent training label."""

    name = "majority"
    family = "plug-in"
    defaults = {}

    @classmethod
    def search_space(cls, space):
        return {}

    def fit(self, train, val=None, *, seed, report=None):
        self.label_ = int(np.bincount(train.labels).argmax())
        return self

    def predict(self, images):
        return np.full(len(images), self.label_)
'''


def run(command: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (so the build leaves nothing in the checkout)."""
    work = tmp_path_factory.mktemp("build")
    (work / "src").mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, work / "src" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, work / "src" / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(work / "dist"), str(work / "src")], work, None)
    [built] = (work / "dist").glob("digitbench-*.whl")
    return built


def test_the_wheel_holds_one_import_name(wheel: Path) -> None:
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"digitbench"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "digitbench/models/lenet.py" in names and "digitbench/benchmark/commands/main.py" in names
    assert not any(n.startswith(("benchmarks/", "tests/")) for n in names)


def test_installed_from_the_wheel_beside_the_users_own_packages(wheel: Path, tmp_path: Path,
                                                               tiny_idx: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dependencies = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "test_dependencies.pth").write_text("\n".join(dependencies) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         str(wheel)], tmp_path, None)

    project = tmp_path / "project"  # a user's project: its own models/ and reports/ packages
    for package in ("models", "reports"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"OWNER = 'the user: {package}'\n")
    (project / "models" / "base.py").write_text("class DigitModel:  # the user's, not ours\n    pass\n")
    (project / "myplug.py").write_text(PLUGIN)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": ".", "HOME": str(tmp_path),
           "DIGITBENCH_WORKERS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    digitbench = str(venv / "bin" / "digitbench")

    where = run([python, "-c", "import digitbench, models; print(digitbench.__file__, models.OWNER)"],
                project, env).stdout
    assert where.startswith(str(site / "digitbench")) and "the user: models" in where
    version = run([digitbench, "--version"], project, env).stdout.strip()
    assert version == f"digitbench {wheel.name.split('-')[1]}"
    assert run([python, "-m", "digitbench", "--version"], project, env).stdout.strip() == version
    listing = run([digitbench, "list", "models", "--model-path", "./myplug.py:Majority"], project, env).stdout
    assert "lenet-relu" in listing and "majority" in listing

    run([digitbench, "run", "--dataset", f"idx:{tiny_idx}", "--models", "logreg,majority", "--model-path",
         "./myplug.py:Majority", "--tuner", "none", "--no-onnx", "--workers", "2", "--threads", "1",
         "--out", "runs/mine"], project, env)
    import pandas as pd

    rows = pd.read_csv(project / "runs" / "mine" / "results.csv")
    assert sorted(rows["model"]) == ["logreg", "majority"] and (rows["status"] == "ok").all()
    assert (project / "runs" / "mine" / "report.md").is_file()
