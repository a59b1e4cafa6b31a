"""The work of ``digitbench submit`` (its CLI side is ``benchmark.commands.submit``): choose the parameters,
train one model per seed on all of train.csv, average their class probabilities over test.csv,
write the submission and say what was done."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.execution.progress import RunProgress
from benchmark.execution.timing import Measured, measure
from benchmark.store import RESULTS_FILE, load_results
from models.atomic import write_text
from models.base import probabilities
from models.errors import InputError
from models.registry import Entry


@dataclass(frozen=True)
class Plan:
    """Everything one submission needs, checked."""

    folder: Path                 # holds train.csv and test.csv
    entry: Entry
    params: dict[str, Any]       # the full parameter set (fixed ones included)
    notes: list[str]             # where the parameters came from
    seeds: int
    out: Path
    save_model: Path | None
    cache_dir: Path | None
    threads: int


def resolve_params(entry: Entry, run_dir: Path | None, params_json: str | None, epochs: int | None,
                   dataset: str) -> tuple[dict[str, Any], list[str]]:
    """Defaults, then the tuned values of ``run_dir`` (if given), then ``--params``, then
    ``--epochs``; returns the full parameter set and notes saying where values came from."""
    params, notes = entry.defaults(), []
    if run_dir is not None:
        tuned, note = params_from_run(run_dir, entry.name, dataset)
        unknown = sorted(set(tuned) - set(params))
        if unknown:
            raise InputError(f"{run_dir / RESULTS_FILE}: {entry.name} parameters there include "
                             f"{', '.join(unknown)}, which this {entry.name} does not take")
        params.update(tuned)
        notes.append(note)
    else:
        notes.append("defaults")
    given = parse_params(params_json)
    if epochs is not None:
        given["epochs"] = epochs
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise InputError(f"--params: {entry.name} has no parameter(s) {', '.join(unknown)}; it takes "
                         f"{', '.join(sorted(params))}")
    clash = sorted(k for k in given if k in entry.fixed and given[k] != entry.fixed[k])
    if clash:
        raise InputError(f"--params: {', '.join(clash)} fixed by the variant {entry.name}")
    if given:
        params.update(given)
        notes.append("overridden by the command line: " + ", ".join(f"{k}={v}" for k, v in given.items()))
    try:
        entry.create(**params)  # the model's own checks, before any data is read
    except (TypeError, ValueError) as exc:
        raise InputError(f"{entry.name}: {exc}") from None
    return params, notes


def params_from_run(run_dir: Path, model: str, dataset: str) -> tuple[dict[str, Any], str]:
    """The parameters of ``model``'s final rows in ``run_dir`` and a note on where they came from.

    Rows of ``dataset`` are preferred; among (dataset, tuner) groups the best mean test accuracy
    wins. Parameters carry no images, so a run on another dataset is fine and is named.
    """
    path = Path(run_dir) / RESULTS_FILE
    frame = load_results(path)
    final = frame[(frame["trial"] == "final") & (frame["status"] == "ok")]
    mine = final[final["model"] == model]
    if mine.empty:
        others = ", ".join(sorted(final["model"].unique())) or "none"
        raise InputError(f"{path}: no finished final rows of model {model} (final models there: "
                         f"{others})")
    if (mine["dataset"] == dataset).any():
        mine = mine[mine["dataset"] == dataset]
    groups = mine.groupby(["dataset", "tuner"])["test_accuracy"].agg(["mean", "count"])
    (best_dataset, best_tuner), best = groups["mean"].idxmax(), groups.loc[groups["mean"].idxmax()]
    rows = mine[(mine["dataset"] == best_dataset) & (mine["tuner"] == best_tuner)]
    counted = Counter(rows["params"])
    text = counted.most_common(1)[0][0]
    try:
        params = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise InputError(f"{path}: the params of {model} ({best_tuner}) are not JSON: "
                         f"{str(text)[:80]!r}") from None
    note = (f"tuned with {best_tuner} on {best_dataset} ({path}: mean test accuracy "
            f"{100 * best['mean']:.2f}% over {int(best['count'])} seed(s))")
    if len(groups) > 1:
        others = ", ".join(f"{t} on {d} {100 * m:.2f}%" for (d, t), m in groups["mean"].items()
                           if (d, t) != (best_dataset, best_tuner))
        note += f"; best of {len(groups)} (also: {others})"
    if len(counted) > 1:
        note += f"; seeds disagree on parameters, took the most common of {len(counted)}"
    if best_dataset != dataset:
        note += "; tuned on another dataset: parameters only, no images are carried over"
    return params, note


def train_and_submit(plan: Plan) -> int:
    """Train every seed, predict test.csv, write the submission (and models); print a summary."""
    from benchmark import provenance
    from benchmark.data.datasets import load_kaggle_test, load_kaggle_train
    from models import persist

    train = load_kaggle_train(plan.folder, cache_dir=plan.cache_dir)
    test = load_kaggle_test(plan.folder, cache_dir=plan.cache_dir)  # checked before any training
    epochs = plan.params.get("epochs") if "epochs" in plan.entry.defaults() else None
    progress = RunProgress(plan.seeds)
    total = np.zeros((len(test), 10))
    fit_time, predict_time, per_seed, saved = Measured(), Measured(), [], []
    try:
        for seed in range(plan.seeds):
            progress.job_started(f"{plan.entry.name} seed {seed} on {len(train):,} images", epochs)
            model = plan.entry.create(**plan.params)
            with measure() as fitted:
                model.fit(train, None, seed=seed, report=lambda epoch, metrics, seed=seed:
                          progress.epoch(f"seed {seed}", epoch, epochs, metrics))
            with measure() as predicted:
                proba = probabilities(model, test)
            total += proba
            per_seed.append(proba.argmax(axis=1))
            for field in ("cpu_s", "wall_s"):
                setattr(fit_time, field, getattr(fit_time, field) + getattr(fitted, field))
                setattr(predict_time, field, getattr(predict_time, field) + getattr(predicted, field))
            if plan.save_model is not None:
                target = plan.save_model if plan.seeds == 1 else plan.save_model.with_name(
                    f"{plan.save_model.stem}-seed{seed}{plan.save_model.suffix}")
                saved.append(persist.save_model(model, target, plan.entry.name, {
                    "dataset": f"kaggle:{plan.folder}", "images": len(train), "seed": seed},
                    provenance.versions()))
            progress.job_finished(f"{plan.entry.name} seed {seed}: fit {fitted.cpu_s:.1f} CPU-s, "
                                  f"predicted {len(test):,} test images")
    finally:
        progress.close()
    labels = total.argmax(axis=1)
    write_submission(plan.out, labels)
    _print_summary(plan, len(train), len(test), labels, per_seed, fit_time, predict_time, saved)
    return 0


def _print_summary(plan: Plan, n_train: int, n_test: int, labels: np.ndarray,
                   per_seed: list[np.ndarray], fit_time: Measured, predict_time: Measured,
                   saved: list[Path]) -> None:
    combine = ("averaged predict_proba" if hasattr(plan.entry.cls, "predict_proba")
               else "majority vote (the model has no predict_proba)")
    seeds = f"{plan.seeds} (0..{plan.seeds - 1}), {combine}" if plan.seeds > 1 else "1 (seed 0)"
    if plan.seeds > 1:
        agree = np.mean([np.all([s == labels for s in per_seed], axis=0)])
        seeds += f"; every seed agrees with the ensemble on {100 * agree:.2f}% of the test images"
    counts = np.bincount(labels, minlength=10)
    lines = [
        f"submission: {plan.out} ({n_test:,} rows: ImageId 1..{n_test:,}, Label)",
        f"model:      {plan.entry.name} {json.dumps(plan.params, sort_keys=True)}",
        f"params:     {'; '.join(plan.notes)}",
        f"seeds:      {seeds}",
        f"train:      {n_train:,} images of {plan.folder / 'train.csv'} (nothing else: leakage guard)",
        f"test:       {n_test:,} images of {plan.folder / 'test.csv'}; labels 0..9: "
        + " ".join(str(c) for c in counts),
        f"CPU:        fit {fit_time.cpu_s:.1f} CPU-s ({fit_time.wall_s:.1f} s wall), predict "
        f"{predict_time.cpu_s:.1f} CPU-s, {plan.threads} thread(s)",
    ]
    lines += [f"model file: {path}" for path in saved]
    print("\n".join(lines), flush=True)


def parse_params(text: str | None) -> dict[str, Any]:
    """``--params`` JSON as a dict (empty when not given), checked as ``run --params`` is."""
    from benchmark.config import parse_params as check

    return {} if text is None else check("--params", text)


def write_submission(path: Path, labels: Any) -> None:
    """Write ``ImageId,Label`` rows (ImageId = 1..n in order) to ``path`` atomically."""
    write_text(path, "ImageId,Label\n" + "".join(f"{i},{int(label)}\n"
                                                  for i, label in enumerate(labels, start=1)))
