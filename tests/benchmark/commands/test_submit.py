"""``digitbench submit``: ids and order, seed ensembles, parameters from a run, bad CSVs, leakage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.data.readers import PIXELS
from digitbench.benchmark.store import ResultsStore
from digitbench.models import registry
from digitbench.models.base import DigitModel, Digits

N_TRAIN, N_TEST = 600, 200


def write_kaggle(folder: Path, train: Digits, test_images: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(train.images.reshape(len(train), -1), columns=PIXELS)
    frame.insert(0, "label", train.labels)
    frame.to_csv(folder / "train.csv", index=False)
    pd.DataFrame(test_images.reshape(len(test_images), -1), columns=PIXELS).to_csv(
        folder / "test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory: pytest.TempPathFactory, real_digits: Digits) -> tuple[Path, Digits, Digits]:
    """A Kaggle folder of 600 real training digits and 200 other test digits (labels held back)."""
    images, labels = real_digits
    train = Digits(images[:N_TRAIN], labels[:N_TRAIN])
    test = Digits(images[N_TRAIN:N_TRAIN + N_TEST], labels[N_TRAIN:N_TRAIN + N_TEST])
    return write_kaggle(tmp_path_factory.mktemp("kaggle"), train, test.images), train, test


def submit(folder: Path | str, *args: str | Path, cache: Path) -> int:
    spec = folder if isinstance(folder, str) else f"kaggle:{folder}"
    return main(["submit", spec, *map(str, args), "--cache-dir", str(cache), "--threads", "1"])


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_submission_has_one_based_ids_in_test_order(kaggle, tmp_path: Path, plugin_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    folder, train, test = kaggle
    out = tmp_path / "sub" / "submission.csv"
    assert submit(folder, "--model", "nearest-centroid", "--model-path", "tinyplugin:NearestCentroid",
                  "--out", out, cache=tmp_path / "cache") == 0
    text = out.read_text()
    assert text.startswith("ImageId,Label\n") and text.endswith("\n")
    submission = pd.read_csv(out)
    assert submission["ImageId"].tolist() == list(range(1, N_TEST + 1))
    expected = registry.get("nearest-centroid").create().fit(train, seed=0).predict(test.images)
    np.testing.assert_array_equal(submission["Label"], expected)  # row i is test.csv's row i
    assert np.mean(submission["Label"] == test.labels) > 0.6
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission-run", "submission.csv"]
    assert not [p for p in out.parent.rglob(".*") if "tmp" in p.name], "no temporary file left"
    said = capsys.readouterr().out
    for words in (f"{N_TRAIN} images of", f"{N_TEST} rows", "nearest-centroid", "CPU-s", str(out),
                  "seeds:      1"):
        assert words in said, words


class SeedVote(DigitModel):
    """Probabilities that depend on the seed: class seed % 10 gets 0.5, the true class of the
    centroid model 0.4. The ensemble over seeds 0..2 must average them, not take seed 0's."""

    name = "seed-vote"
    family = "test"
    defaults = {"weight": 0.4}

    def fit(self, train: Digits, val=None, *, seed: int, budget=None, report=None) -> SeedVote:
        self.seed_ = seed
        self.centroid_ = registry.get("nearest-centroid").create().fit(train, seed=seed)
        return self

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        proba = np.full((len(images), 10), (1 - 0.5 - self.params["weight"]) / 8)
        proba[:, self.seed_ % 10] = 0.5
        proba[np.arange(len(images)), self.centroid_.predict(images)] = self.params["weight"]
        return proba

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)


def test_seeds_average_probabilities(kaggle, tmp_path: Path, plugin_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    folder, train, test = kaggle
    registry.load_model_path("tinyplugin:NearestCentroid")
    monkeypatch.setitem(registry._entries, "seed-vote", registry.Entry("seed-vote", SeedVote))
    out = tmp_path / "s.csv"
    assert submit(folder, "--model", "seed-vote", "--seeds", "3", "--out", out,
                  cache=tmp_path / "cache") == 0
    centroid = registry.get("nearest-centroid").create().fit(train, seed=0).predict(test.images)
    # Averaged over seeds 0, 1, 2 the centroid's class wins (0.4 against 0.5/3) wherever it is
    # not one of 0..2 itself; seed 0 alone would say 0 everywhere.
    np.testing.assert_array_equal(pd.read_csv(out)["Label"], centroid)
    assert "averaged predict_proba" in capsys.readouterr().out


def test_params_from_a_run_folder(kaggle, tmp_path: Path, plugin_path: Path, capsys) -> None:
    folder, _, _ = kaggle
    store = ResultsStore(tmp_path / "run")
    rows = [("optuna", 0.3, 0.81), ("optuna", 0.3, 0.83), ("keras-tuner", 0.6, 0.80),
            ("none", 0.0, 0.95)]
    for i, (tuner, shrink, accuracy) in enumerate(rows):
        store.append({"dataset": "mnist-5k", "model": "nearest-centroid", "family": "plug-in",
                      "tuner": tuner, "trial": "final", "seed": i, "status": "ok",
                      "params": json.dumps({"shrink": shrink}), "test_accuracy": accuracy})
    store.append({"dataset": "mnist-5k", "model": "nearest-centroid", "family": "plug-in",
                  "tuner": "none", "trial": "final", "seed": 9, "status": "error",
                  "params": json.dumps({"shrink": 0.0}), "test_accuracy": 0.99})
    store.append({"dataset": "mnist-5k", "model": "nearest-centroid", "family": "plug-in",
                  "tuner": "none", "trial": "3", "seed": 0, "status": "ok",
                  "params": json.dumps({"shrink": 0.9}), "val_accuracy": 0.99})
    args = ["--model", "nearest-centroid", "--model-path", "tinyplugin:NearestCentroid",
            "--from", tmp_path / "run", "--out", tmp_path / "s.csv"]
    assert submit(folder, *args, cache=tmp_path / "cache") == 0
    said = capsys.readouterr().out
    assert '"shrink": 0.0' in said and "tuned with none on mnist-5k" in said
    assert "best of 3" in said and "parameters only, no images" in said
    assert submit(folder, *args, "--params", '{"shrink": 0.5}', "--overwrite", cache=tmp_path / "cache") == 0
    assert '"shrink": 0.5' in capsys.readouterr().out
    args[1] = "logreg"
    assert submit(folder, *args, cache=tmp_path / "cache") == 2
    assert "no finished final rows of model logreg" in one_error_line(capsys)


@pytest.mark.parametrize("where, line, problem", [
    ("header-label", 1, "has a 'label' column"),
    ("ragged", 5, "line 5 has 783 fields, expected 784"),
    ("text", 7, "line 7, column pixel300: 'dark' is not a number"),
    ("range", 9, "line 9, column pixel0: value 256 is outside 0..255"),
    ("negative", 3, "line 3, column pixel783: value -1 is outside 0..255"),
])
def test_bad_test_csv_writes_nothing(kaggle, tmp_path: Path, plugin_path: Path, capsys,
                                     where: str, line: int, problem: str) -> None:
    source, _, _ = kaggle
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "train.csv").write_bytes((source / "train.csv").read_bytes())
    lines = (source / "test.csv").read_text().splitlines()
    fields = lines[line - 1].split(",")
    if where == "header-label":
        lines = [f"label,{lines[0]}"] + [f"3,{row}" for row in lines[1:]]
    elif where == "ragged":
        lines[line - 1] = ",".join(fields[:-1])
    else:
        column = {"text": 300, "range": 0, "negative": 783}[where]
        fields[column] = {"text": "dark", "range": "256", "negative": "-1"}[where]
        lines[line - 1] = ",".join(fields)
    (folder / "test.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "submission.csv"
    out.parent.mkdir()
    out.write_text("an earlier submission\n")
    assert submit(folder, "--model", "nearest-centroid", "--model-path", "tinyplugin:NearestCentroid",
                  "--out", out, cache=tmp_path / "cache") == 2
    message = one_error_line(capsys)
    assert f"{folder / 'test.csv'}: " in message and problem in message
    assert out.read_text() == "an earlier submission\n" and len(list(out.parent.iterdir())) == 1


@pytest.mark.parametrize("spec, extra", [
    ("mnist", []), ("mnist-5k", []), ("fashion-mnist", []), ("idx:{folder}", []),
    ("kaggle:{folder},mnist", []), ("kaggle:{folder}", ["--data-dir", "/data/mnist"]),
    ("kaggle:{folder}", ["--extra", "mnist"]), ("kaggle:{folder}", ["--dataset", "mnist"]),
    ("kaggle:{folder}", ["--model-file", "mnist-trained.keras"]),
])
def test_leakage_guard_refuses_other_images(kaggle, tmp_path: Path, capsys, spec: str,
                                            extra: list[str]) -> None:
    folder, _, _ = kaggle
    out = tmp_path / "s.csv"
    code = main(["submit", spec.format(folder=folder), "--model", "logreg", "--out", str(out), *extra])
    assert code == 2
    message = one_error_line(capsys)
    assert "refused" in message and "MNIST" in message and "train.csv only" in message
    assert not out.exists()


@pytest.mark.parametrize("args, expected", [
    (["--seeds", "0"], "--seeds: expected a whole number of at least 1"),
    (["--params", '{"C": 1}'], "nearest-centroid has no parameter(s) C"),
    (["--params", '{"shrink": "much"}'],
     "--params: shrink of nearest-centroid: expected a number, got 'much'"),
    (["--params", "[1]"], "expected a JSON object"),
    (["--save-model", "m.keras"], "cannot be saved"),
    (["--from", "no-such-run"], "no such file"),
])
def test_bad_options_are_one_line(kaggle, tmp_path: Path, plugin_path: Path, capsys,
                                  args: list[str], expected: str) -> None:
    folder, _, _ = kaggle
    code = submit(folder, "--model", "nearest-centroid", "--model-path", "tinyplugin:NearestCentroid",
                  "--out", tmp_path / "s.csv", *args, cache=tmp_path / "cache")
    assert code == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "s.csv").exists()


def test_out_is_a_folder(kaggle, tmp_path: Path, capsys) -> None:
    folder, _, _ = kaggle
    assert submit(folder, "--model", "logreg", "--out", tmp_path, cache=tmp_path / "cache") == 2
    assert "is a folder" in one_error_line(capsys)


def test_a_stopped_submission_resumes_its_seeds_on_parallel_workers(kaggle, tmp_path: Path, plugin_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys) -> None:
    """The seeds are finals of the one job loop: two worker processes train them side by side, each
    is a row as it finishes, and --resume trains only the seeds not yet there (a stopped submission
    loses nothing finished); a resumed folder of other parameters is refused."""
    folder, train, test = kaggle
    monkeypatch.setenv("DIGITBENCH_WORKERS", "2")
    out, run = tmp_path / "s.csv", tmp_path / "s-run"
    args = ["--model", "nearest-centroid", "--model-path", "tinyplugin:NearestCentroid", "--out", out]
    assert submit(folder, *args, "--seeds", "2", cache=tmp_path / "cache") == 0
    first = pd.read_csv(run / "results.csv")
    assert sorted(first["seed"]) == [0, 1] and set(first["trial"]) == {"final"}
    assert "2 worker processes" in capsys.readouterr().err
    assert submit(folder, *args, "--seeds", "3", cache=tmp_path / "cache") == 2
    assert "already exists: pass --resume" in one_error_line(capsys)
    assert submit(folder, *args, "--seeds", "3", "--resume", cache=tmp_path / "cache") == 0
    rows = pd.read_csv(run / "results.csv")
    assert sorted(rows["seed"]) == [0, 1, 2] and rows["run_id"].nunique() == 2, "seeds 0, 1 kept"
    assert "seeds:      3 (0..2)" in capsys.readouterr().out
    expected = registry.get("nearest-centroid").create().fit(train, seed=0).predict(test.images)
    np.testing.assert_array_equal(pd.read_csv(out)["Label"], expected)
    assert submit(folder, *args, "--params", '{"shrink": 0.5}', "--resume", cache=tmp_path / "cache") == 2
    assert "holds seeds of other parameters" in one_error_line(capsys)


def test_submit_saves_a_model_that_predict_loads(kaggle, tmp_path: Path, capsys) -> None:
    folder, _, test = kaggle
    out, model_file = tmp_path / "s.csv", tmp_path / "m" / "logreg.skops"
    assert submit(folder, "--model", "logreg", "--params", '{"max_iter": 500}', "--out", out,
                  "--save-model", model_file, cache=tmp_path / "cache") == 0
    assert f"model file: {model_file}" in capsys.readouterr().out
    from digitbench.models.persist import load_model

    model, meta = load_model(model_file)
    assert meta["trained_on"]["images"] == N_TRAIN and meta["params"]["max_iter"] == 500
    np.testing.assert_array_equal(model.predict(test.images), pd.read_csv(out)["Label"])


def test_save_model_names_the_skops_suffix(kaggle, tmp_path: Path, capsys) -> None:
    """scikit-learn models are saved as .skops; the .npz of earlier versions is refused before training."""
    folder, _, _ = kaggle
    assert submit(folder, "--model", "logreg", "--out", tmp_path / "s.csv", "--save-model",
                  tmp_path / "logreg.npz", cache=tmp_path / "cache") == 2
    assert "logreg models are saved as .skops files" in one_error_line(capsys)
    assert not (tmp_path / "s.csv").exists()
