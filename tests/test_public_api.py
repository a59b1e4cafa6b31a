"""The public surface: one import name, the Python API, plug-ins from where the user stands, and
``--version``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import digitbench
from digitbench.benchmark.commands.main import main
from digitbench.models import registry

PLUGIN = '''
import numpy as np
from digitbench import DigitModel


class {cls}(DigitModel):
    name = "{name}"
    family = "plug-in"
    defaults = {{}}

    @classmethod
    def search_space(cls, space):
        return {{}}

    def fit(self, train, val=None, *, seed, report=None):
        self.label_ = int(np.bincount(train.labels).argmax())
        return self

    def predict(self, images):
        return np.full(len(images), self.label_)
'''


def test_one_import_name_exposes_the_contract_and_the_api() -> None:
    from digitbench.models.base import DigitModel, Digits

    assert digitbench.DigitModel is DigitModel and digitbench.Digits is Digits
    assert digitbench.register is registry.register
    assert {"run", "load_results", "write_report", "show_versions", "__version__"} <= set(digitbench.__all__)


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"digitbench {digitbench.__version__}"


def test_a_plugin_file_by_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "majority_file.py").write_text(PLUGIN.format(cls="Majority", name="majority-file"))
    monkeypatch.chdir(tmp_path)
    entry = registry.load_model_path("./majority_file.py:Majority")
    assert entry.name == "majority-file" and registry.get("majority-file") is entry
    assert registry.load_model_path(f"{tmp_path}/majority_file.py:Majority").cls is entry.cls, "the same file"
    with pytest.raises(digitbench.InputError, match="no such file"):
        registry.load_model_path("./absent.py:Majority")
    with pytest.raises(digitbench.InputError, match="has no Minority"):
        registry.load_model_path("./majority_file.py:Minority")


def test_a_plugin_module_in_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "majority_here.py").write_text(PLUGIN.format(cls="Majority", name="majority-here"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert registry.load_model_path("majority_here:Majority").name == "majority-here"
    assert sys.path[-1] == str(tmp_path), "the current folder comes after the installed packages"
    with pytest.raises(digitbench.InputError, match="cannot import no_such_module"):
        registry.load_model_path("no_such_module:Majority")


def test_a_plugin_written_for_the_old_import_is_told_the_new_one(tmp_path: Path) -> None:
    """In a process of its own, started where the repository's top-level folders are not on the path
    (pytest's is: here ``import models`` would find them)."""
    (tmp_path / "old_style.py").write_text("from models.base import DigitModel\n")
    digitbench_command = Path(sys.executable).with_name("digitbench")
    done = subprocess.run([digitbench_command, "list", "models", "--model-path", "old_style.py:Anything"],
                          capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "from digitbench import DigitModel, Digits, register" in done.stderr
    assert "instead of importing from models" in done.stderr


def test_a_spec_without_a_class_is_refused() -> None:
    for spec in ("majority", "majority:", ":Majority", "file.py:not-a-name"):
        with pytest.raises(digitbench.InputError, match="expected package.module:Class"):
            registry.load_model_path(spec)


def test_run_load_and_report_from_python(tiny_idx: Path, tmp_path: Path) -> None:
    settings = {"dataset": f"idx:{tiny_idx}", "models": ["logreg"], "tuner": "none", "onnx": False}
    run_dir = digitbench.run(settings, seeds=2, out=tmp_path / "run")  # logreg: seed-invariant, one final
    assert run_dir == tmp_path / "run" and (run_dir / "report.md").is_file()
    finals = digitbench.load_results(run_dir, kind="final")
    assert list(finals["kind"].unique()) == ["final"] and len(finals) == 1
    assert finals["test_accuracy"].dtype == float and finals["test_accuracy"].between(0.5, 1).all()
    assert isinstance(finals["params"][0], dict) and finals["seed"].tolist() == [0]
    assert finals["versions"][0]["digitbench"] == digitbench.__version__
    assert "digitbench.run(" in finals["command"][0]
    assert len(digitbench.load_results(run_dir)) == len(finals), "no tuning, no trial rows"
    (run_dir / "report.md").unlink()
    assert digitbench.write_report(run_dir) == run_dir / "report.md"
    run_table = (run_dir / "report.md").read_text().split("## Run")[1].split("\n\n")[1]
    assert re.search(rf"\|\s*{re.escape(digitbench.__version__)}\s*\|", run_table), run_table


def test_bad_settings_from_python_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(digitbench.InputError, match="unknown key 'sedes'"):
        digitbench.run(dataset="mnist-5k", sedes=3, out=tmp_path / "run")
    with pytest.raises(digitbench.InputError, match="seeds: expected a whole number"):
        digitbench.run({"dataset": "mnist-5k", "seeds": 0}, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(digitbench.InputError, match="kind must be one of"):
        digitbench.load_results(tmp_path, kind="finals")


def test_python_m_digitbench_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "digitbench", "--version"], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, f"digitbench {digitbench.__version__}")


def test_a_script_without_the_main_guard_is_told_so(tmp_path: Path, tiny_idx: Path) -> None:
    """Worker processes run the script again on start; there digitbench.run ends the worker, and
    the coordinator's run stops with one line saying why, before anything is written."""
    script = tmp_path / "unguarded.py"
    script.write_text(f"import digitbench\ndigitbench.run(dataset='idx:{tiny_idx}', models='logreg', "
                      "tuner='none', onnx=False, workers=2, out='run')\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith(
        "a worker process ended while starting (exit status 86): a script that calls digitbench.run must "
        "put its calls under `if __name__ == \"__main__\":` (worker processes import the script again, "
        "as in any Python multiprocessing)"), done.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_a_full_disk_when_the_report_is_written_says_how_to_write_it(
        tiny_idx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def no_room(run_dir: Path) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "report.md"))

    monkeypatch.setattr("digitbench.benchmark.commands.api.write_report", no_room)
    with pytest.raises(digitbench.NoSpaceLeft) as full:
        digitbench.run(dataset=f"idx:{tiny_idx}", models="logreg", tuner="none", onnx=False,
                       out=tmp_path / "run")
    message = str(full.value)
    assert "\n" not in message
    assert message.endswith(f"write the report with: digitbench report {tmp_path / 'run'}")
    assert len(digitbench.load_results(tmp_path / "run", kind="final")) == 1, "the results are safe"
