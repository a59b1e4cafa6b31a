"""The append-only results file: header, flushed rows, torn lines, done jobs, predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from digitbench.benchmark.store import (
    COLUMNS,
    ResultsStore,
    cut_torn_line,
    load_misclassified,
    load_predictions,
    load_results,
)
from digitbench.common.errors import InputError

ROW = {"dataset": "mnist-5k", "model": "logreg", "tuner": "none", "trial": "final", "seed": 0,
       "status": "ok", "test_accuracy": 0.9, "params": '{"C": 0.1}', "error": None}
HAND_TYPED = "this,line,was,typed,by,hand\n"


def three_rows(run_dir: Path, *, middle: str = "") -> Path:
    """A results.csv of three rows as digitbench writes them, ``middle`` inserted after the first
    (on line 3); returns its path."""
    store = ResultsStore(run_dir)
    for seed in range(3):
        store.append({**ROW, "seed": seed, "utc": f"2026-01-01T00:00:0{seed}+00:00", "fit_cpu_s": 1.5})
    lines = store.path.read_text().splitlines(keepends=True)
    store.path.write_text("".join([*lines[:2], middle, *lines[2:]]))
    return store.path


def test_rows_append_under_one_header_and_read_back_with_pandas(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "run")
    store.append(ROW)
    store.append({**ROW, "seed": 1, "status": "error", "error": "ValueError: boom, really"})
    frame = pd.read_csv(store.path)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["seed"].tolist() == [0, 1]
    assert frame["error"].iloc[1] == "ValueError: boom, really"
    assert frame["params"].iloc[0] == '{"C": 0.1}'
    assert store.done_jobs() == {("mnist-5k", "logreg", "none", None, 0, None, None)}, \
        "a final: no trial number, the primary one: no trial refit"


def test_unknown_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown result columns"):
        ResultsStore(tmp_path).append({**ROW, "accuracy": 1})


def test_repair_cuts_a_torn_last_line(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append(ROW)
    with open(store.path, "a") as f:
        f.write("abc123,2026-01-01,mnist-5k,hold")  # killed mid-write
    store.repair()
    assert len(store.load()) == 1
    store.append({**ROW, "seed": 1})
    assert store.load()["seed"].tolist() == ["0", "1"]


@pytest.mark.parametrize(("data", "kept"), [(b"h\n1\n2,tor", b"h\n1\n"), (b"h\n1\n", b"h\n1\n"),
                                            (b"h,torn", b""), (b"", b"")])
@pytest.mark.parametrize("mode", ["rb+", "ab+"])
def test_one_helper_cuts_the_torn_line_for_repair_and_append(tmp_path: Path, data: bytes, kept: bytes,
                                                             mode: str) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(data)
    with open(path, mode) as f:
        assert cut_torn_line(f) == len(kept)
    assert path.read_bytes() == kept


def test_repair_and_append_both_cut_with_that_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr("digitbench.benchmark.store.cut_torn_line",
                        lambda f: calls.append(f.mode) or cut_torn_line(f))
    store = ResultsStore(tmp_path)
    store.append(ROW)
    store.repair()
    assert calls == ["ab+", "rb+"]


def test_a_foreign_header_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="row 1: header does not match"):
        ResultsStore(tmp_path).repair()


def test_predictions_round_trip(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    rel = store.save_predictions("mnist-5k__logreg", np.array([1, 2, 3]), np.array([1, 2, 4]))
    assert rel == "predictions/mnist-5k__logreg.npz"
    y_true, y_pred = load_predictions(tmp_path, rel)
    assert y_true.tolist() == [1, 2, 3] and y_pred.tolist() == [1, 2, 4]
    assert not list((tmp_path / "predictions").glob("*.tmp*"))


def test_misclassified_digits_are_kept_with_their_images(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    images = np.arange(4 * 28 * 28, dtype=np.uint32).reshape(4, 28, 28).astype(np.uint8)
    rel = store.save_predictions("m", np.array([1, 2, 3, 4]), np.array([1, 0, 3, 0]), images)
    index, wrong = load_misclassified(tmp_path, rel)
    assert index.tolist() == [1, 3]
    np.testing.assert_array_equal(wrong, images[[1, 3]])
    plain = store.save_predictions("plain", np.array([1]), np.array([2]))
    assert load_misclassified(tmp_path, plain)[0].size == 0


def test_files_of_older_versions_read_with_empty_new_columns(tmp_path: Path) -> None:
    old_columns = [c for c in COLUMNS if c not in ("history", "rss_mb")]
    pd.DataFrame([{c: ROW.get(c) for c in old_columns}]).to_csv(tmp_path / "results.csv", index=False)
    frame = ResultsStore(tmp_path).load()
    assert list(frame.columns) == list(COLUMNS) and frame["history"].isna().all()
    pd.DataFrame([{"model": "x"}]).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(InputError, match="missing column"):
        ResultsStore(tmp_path).load()


def test_a_file_written_before_learning_curves_keys_its_finals_on_the_whole_part(tmp_path: Path) -> None:
    """... and on the primary final: it was written before extra finals too."""
    old_columns = [c for c in COLUMNS if c not in ("train_size", "refit_trial")]
    rows = [{c: ROW.get(c) for c in old_columns}, {**{c: ROW.get(c) for c in old_columns}, "seed": 1}]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    store = ResultsStore(tmp_path)
    assert store.done_jobs() == {("mnist-5k", "logreg", "none", None, 0, None, None),
                                 ("mnist-5k", "logreg", "none", None, 1, None, None)}
    store.repair()  # --resume: upgraded in place, then appended to
    store.append({**ROW, "seed": 0, "train_size": 250})
    assert ("mnist-5k", "logreg", "none", None, 0, 250, None) in store.done_jobs()
    store.append({**ROW, "seed": 1, "refit_trial": 3})
    assert ("mnist-5k", "logreg", "none", None, 1, None, 3) in store.done_jobs(), "an extra final"
    assert len(store.done_jobs()) == 4


def test_an_older_versions_file_is_upgraded_on_resume(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    old = [c for c in COLUMNS if c not in ("settings", "process_cpu_s", "history")]
    frame = pd.DataFrame([{c: ROW.get(c) for c in old}], columns=old)
    frame.to_csv(store.path, index=False)
    before = store.load()
    store.repair()
    assert store.path.read_text().split("\n", 1)[0] == ",".join(COLUMNS)
    after = store.load()
    pd.testing.assert_frame_equal(before, after)
    store.append({**ROW, "seed": 1, "settings": '{"preset": "quick"}'})
    assert store.load()["seed"].tolist() == ["0", "1"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_hand_typed_line_is_refused_by_resume_and_report_and_the_file_kept(
        tmp_path: Path, tiny_idx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from digitbench.benchmark.commands.main import main

    run = tmp_path / "run"
    path = three_rows(run, middle=HAND_TYPED)
    before, files = path.read_bytes(), {p.name for p in run.iterdir()}
    message = f"{path}: line 3 has 6 fields, expected {len(COLUMNS)} as in the header"
    for argv in (["run", "--dataset", f"idx:{tiny_idx}", "--models", "logreg", "--out", str(run),
                  "--cache-dir", str(tmp_path / "cache"), "--resume"], ["report", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.rstrip("\n").endswith(f"error: {message}"), err
        assert path.read_bytes() == before, "the refused file is left exactly as it is"
    # the run's lock file is taken before results.csv is read; nothing else is written
    assert {p.name for p in run.iterdir()} - files <= {".lock"}


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("fit_cpu_s", "fast", "'fast' is not a number"),
    ("test_accuracy", "97%", "'97%' is not a number"),
    ("trial", "best", "'best' is not a trial number or 'final'"),
    ("seed", "", "empty, expected a whole number"),
    ("seed", "1.5", "'1.5' is not a whole number"),
    ("status", "done", "'done' is not one of ok, pruned, error"),
    ("utc", "yesterday", "'yesterday' is not an ISO 8601 time with its UTC offset"),
    ("params", "{C: 1}", "'{C: 1}' is not JSON of the shape {name: value}"),
])
def test_a_cell_that_does_not_fit_its_column_is_refused_with_line_and_column(
        tmp_path: Path, column: str, value: str, problem: str) -> None:
    path = three_rows(tmp_path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[2, column] = value  # the third row: line 4
    frame.to_csv(path, index=False, lineterminator="\n")
    before = path.read_bytes()
    for read in (lambda: load_results(path), ResultsStore(tmp_path).repair):
        with pytest.raises(InputError) as info:
            read()
        assert str(info.value) == f"{path}: line 4, column {column}: {problem}"
        assert path.read_bytes() == before


def test_numbers_and_empty_cells_fit(tmp_path: Path) -> None:
    path = three_rows(tmp_path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, ["fit_cpu_s", "val_accuracy", "macs", "utc"]] = ["1e-05", "nan", "", ""]
    frame.to_csv(path, index=False, lineterminator="\n")
    loaded = load_results(path)
    assert loaded["fit_cpu_s"].tolist() == [1e-05, 1.5, 1.5] and loaded["val_accuracy"].isna().all()


def test_a_torn_last_line_is_still_cut_silently(tmp_path: Path) -> None:
    path = three_rows(tmp_path)
    complete = path.read_bytes()
    path.write_bytes(complete + b"abc123,2026-01-01T00:00:09+00:00,mnist-5k,hold")  # killed mid-write
    assert len(load_results(path)) == 3, "read without the torn line, the file untouched"
    ResultsStore(tmp_path).repair()
    assert path.read_bytes() == complete
    path.write_bytes(b"run_id,utc,data")  # killed while writing the first row
    ResultsStore(tmp_path).repair()
    assert path.read_bytes() == b""


def test_a_bad_line_before_a_torn_one_is_refused_before_anything_is_cut(tmp_path: Path) -> None:
    path = three_rows(tmp_path, middle=HAND_TYPED)
    path.write_bytes(path.read_bytes() + b"abc123,2026-01-01,mnist-5k,hold")
    before = path.read_bytes()
    with pytest.raises(InputError, match="line 3 has 6 fields"):
        ResultsStore(tmp_path).repair()
    assert path.read_bytes() == before
