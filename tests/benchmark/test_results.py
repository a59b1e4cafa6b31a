"""The append-only results file: header, flushed rows, torn lines, done jobs, predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.store import COLUMNS, ResultsStore, cut_torn_line, load_misclassified, load_predictions
from models.errors import InputError

ROW = {"dataset": "mnist-5k", "model": "logreg", "tuner": "none", "trial": "final", "seed": 0,
       "status": "ok", "test_accuracy": 0.9, "params": '{"C": 0.1}', "error": None}


def test_rows_append_under_one_header_and_read_back_with_pandas(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "run")
    store.append(ROW)
    store.append({**ROW, "seed": 1, "status": "error", "error": "ValueError: boom, really"})
    frame = pd.read_csv(store.path)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["seed"].tolist() == [0, 1]
    assert frame["error"].iloc[1] == "ValueError: boom, really"
    assert frame["params"].iloc[0] == '{"C": 0.1}'
    assert store.done_jobs() == {("mnist-5k", "logreg", "none", "final", "0")}


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
    import benchmark.store

    calls = []
    monkeypatch.setattr(benchmark.store, "cut_torn_line", lambda f: calls.append(f.mode) or cut_torn_line(f))
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
