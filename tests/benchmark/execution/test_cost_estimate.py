"""The cost a run's finals are expected to have, printed before it starts: each final's training-set
size through its model's measured rate, plug-ins without one named."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.datasets import load_split
from digitbench.benchmark.execution.cost_estimate import RATES, Rate, describe, expected_finals
from digitbench.benchmark.execution.plan import plan
from digitbench.models import registry


def test_a_rate_is_a_power_law_per_epoch_where_the_model_trains_in_epochs() -> None:
    assert Rate(2.0, 1.0).cpu_s(1000, epochs=None) == pytest.approx(2000.0)
    assert Rate(1e-3, 2.0).cpu_s(100, epochs=7) == pytest.approx(10.0), "epochs do not scale a kernel SVM"
    assert Rate(1e-3, 1.0, per_epoch=True).cpu_s(1000, epochs=3) == pytest.approx(3.0)


def test_the_plan_sums_every_final_by_its_training_set(tmp_path: Path, tiny_idx: Path,
                                                        plugin_path: Path) -> None:
    registry.load_model_path("tinyplugin:NearestCentroid")
    config = build_config({"datasets": f"idx:{tiny_idx}", "models": "svm-rbf,lenet-relu,nearest-centroid",
                           "seeds": 2, "train_sizes": "250", "epochs": 4})
    split = load_split(config.datasets[0], cache_dir=tmp_path)
    contenders = plan(config, [split], [registry.get(m) for m in config.models], set())
    total, unknown = expected_finals(contenders, target=False)
    rbf, lenet = RATES["svm-rbf"], RATES["lenet-relu"]
    whole = len(split.train) + len(split.val)  # 600: no target, the validation part is trained on
    expected = (rbf.cpu_s(whole, None) + 2 * rbf.cpu_s(250, None)  # one whole-part final: seed-invariant
                + 2 * lenet.cpu_s(whole, 4) + 2 * lenet.cpu_s(250, 4))
    assert total == pytest.approx(expected) and unknown == ["nearest-centroid"]
    line = describe(contenders, target=False, slots=2)
    assert line.startswith(f"expected: about {expected:,.0f} fit CPU-s of finals")
    assert "2 job(s) at once" in line
    assert line.endswith("nearest-centroid: no measured rate, not counted")


def test_the_scaling_preset_is_official_mnist_with_auto_sizes_and_three_seeds() -> None:
    config = build_config({"preset": "scaling"})
    assert (config.datasets, config.train_sizes, config.seeds, config.tuners) == (
        ("mnist",), "auto", 3, ("none",))
    assert set(config.models) == set(RATES), "every built-in model has a measured rate"
