"""``run --save-models``: the finals' models kept in RUN_DIR/models/, their paths in results.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.readers import read_idx_pair
from digitbench.benchmark.store import load_predictions, load_results, unique_slug
from digitbench.models.persist import load_model


def test_save_models_keeps_every_final_model(tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["run", "--dataset", f"idx:{tiny_idx}", "--models", "linear-svm,nearest-centroid",
                 "--model-path", "tinyplugin:NearestCentroid", "--params", '{"max_iter": 400}',
                 "--seeds", "2", "--save-models", "--out", str(out), "--cache-dir",
                 str(tmp_path / "cache"), "--threads", "1"])
    assert code == 0
    results = load_results(out / "results.csv")
    linear = results[results["model"] == "linear-svm"].sort_values("seed")  # a seed each
    slug = unique_slug(f"idx:{tiny_idx.resolve()}")
    assert linear["model_file"].tolist() == [f"models/{slug}/linear-svm-none-seed{s}.skops" for s in (0, 1)]
    for row in linear.itertuples():
        model, meta = load_model(out / row.model_file)
        assert meta["trained_on"]["images"] == 600 and meta["trained_on"]["seed"] == int(row.seed)
        _, predicted = load_predictions(out, row.predictions)
        test = read_idx_pair(tiny_idx / "t10k-images-idx3-ubyte.gz", tiny_idx / "t10k-labels-idx1-ubyte.gz")
        np.testing.assert_array_equal(model.predict(test.images), predicted)
    # A plug-in without save/load still runs; its rows say why no file was kept.
    centroid = results[results["model"] == "nearest-centroid"]
    assert (centroid["status"] == "ok").all() and centroid["model_file"].isna().all()
    assert centroid["warnings"].str.contains("has no save/load methods").all()
    assert main(["run", "--dataset", f"idx:{tiny_idx}", "--models", "nearest-centroid",
                 "--model-path", "tinyplugin:NearestCentroid", "--overwrite", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]) == 0
    assert not (out / "models").exists(), "--overwrite removes the saved models too"
    assert pd.read_csv(out / "results.csv")["model_file"].isna().all()


def test_save_models_is_a_toml_key(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text("save-models = true\n")
    assert build_config({}, tmp_path / "run.toml").save_models is True
    assert build_config({"save_models": None}).save_models is False
