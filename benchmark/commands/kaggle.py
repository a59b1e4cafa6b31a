"""The work of ``digitbench submit`` (its CLI side is ``benchmark.commands.submit``): choose the parameters,
train one model per seed on all of train.csv, average their class probabilities over test.csv,
write the submission and say what was done."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data.datasets import Split, load_kaggle_test, load_kaggle_train
from digitbench.benchmark.execution.policy import same_params
from digitbench.benchmark.results import extra_finals, load_table
from digitbench.benchmark.store import (
    RESULTS_FILE,
    ResultsStore,
    RowKind,
    Status,
    load_probabilities,
)
from digitbench.common.atomic import write_bytes, write_text
from digitbench.common.errors import InputError
from digitbench.models.base import Digits
from digitbench.models.registry import Entry


@dataclass(frozen=True)
class Plan:
    """Everything one submission needs, checked."""

    folder: Path                 # holds train.csv and test.csv
    entry: Entry
    params: dict[str, Any]       # the full parameter set (fixed ones included)
    notes: list[str]             # where the parameters came from
    out: Path
    save_model: Path | None
    config: RunConfig            # the run that trains the seeds: its folder, seeds, workers, threads

    @property
    def dataset(self) -> str:
        return f"kaggle:{self.folder}"


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
    return params, notes  # values the model cannot train with: refused by the run's check_params


def params_from_run(run_dir: Path, model: str, dataset: str) -> tuple[dict[str, Any], str]:
    """The parameters of ``model``'s final rows in ``run_dir`` and a note on where they came from.

    Rows of ``dataset`` are preferred; among (dataset, tuner) groups the best mean test accuracy
    wins. Parameters carry no images, so a run on another dataset is fine and is named.
    """
    path = Path(run_dir) / RESULTS_FILE
    frame = load_table(Path(run_dir))
    final = frame[(frame["kind"] == RowKind.FINAL) & (frame["status"] == Status.OK) & ~extra_finals(frame)]
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
    counted = Counter(json.dumps(p, sort_keys=True) for p in rows["params"] if p is not None)
    if not counted:
        raise InputError(f"{path}: the final rows of {model} ({best_tuner}) record no params")
    params = json.loads(counted.most_common(1)[0][0])
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


def submission_split(folder: Path, cache_dir: Path | None) -> Split:
    """All of train.csv as the training part (no validation, no hold-out: a submission's finals
    train on every labelled image) and test.csv's unlabelled images as the test part."""
    train = load_kaggle_train(folder, cache_dir=cache_dir)
    test = load_kaggle_test(folder, cache_dir=cache_dir)  # checked before any training
    empty = Digits(train.images[:0], train.labels[:0])
    return Split(dataset=f"kaggle:{folder}", train=train, val=empty,
                 test=Digits(test, np.zeros(len(test), np.int64)),
                 test_split=f"Kaggle test.csv ({len(test):,} unlabelled images)",
                 source=str(folder))


def check_resume(plan: Plan) -> None:
    """A submission continued with ``--resume`` must train what its finished seeds trained."""
    store = ResultsStore(plan.config.run_dir)
    if not (plan.config.resume and store.exists()):
        return
    frame = load_table(plan.config.run_dir)
    mine = frame[(frame["model"] == plan.entry.name) & (frame["kind"] == RowKind.FINAL)]
    wanted = json.dumps(plan.params, sort_keys=True, default=str)
    other = [p for p in mine["params"] if p is not None and not same_params(p, plan.params)]
    if other or (frame["model"] != plan.entry.name).any():
        raise InputError(f"{store.path}: holds seeds of other parameters or models than this submission "
                         f"({plan.entry.name} {wanted}); use --overwrite to train again")


def train_and_submit(plan: Plan, command: str) -> int:
    """Train every seed as a final of the one job loop (workers, --cluster, --resume), average their
    class probabilities over test.csv, write the submission (and models); print a summary."""
    import functools

    from digitbench.benchmark.execution import session
    from digitbench.benchmark.execution.tasks import run_submission

    check_resume(plan)
    split = submission_split(plan.folder, plan.config.cache_dir)
    code = session.run(plan.config, command, functools.partial(session.open_executor, plan.config),
                       load=lambda config, entries: ([split], []), final_task=run_submission)
    if code != 0:
        if code == 1:
            print(f"digitbench submit: some seeds failed (see {plan.config.run_dir / RESULTS_FILE}); no "
                  "submission written", file=sys.stderr)
        return code
    rows = load_table(plan.config.run_dir)
    rows = rows[(rows["kind"] == RowKind.FINAL) & (rows["status"] == Status.OK)
                & (rows["model"] == plan.entry.name)
                & (rows["seed"] < plan.config.seeds)]  # a resumed folder may hold more seeds than asked now
    rows = rows.sort_values("seed")
    scores = [load_probabilities(plan.config.run_dir, rel) for rel in rows["predictions"]]
    labels = np.sum(scores, axis=0).argmax(axis=1)
    write_submission(plan.out, labels)
    saved = [_copy_model(plan, plan.config.run_dir / rel, int(seed), len(rows))
             for rel, seed in zip(rows["model_file"], rows["seed"], strict=True) if isinstance(rel, str)]
    _print_summary(plan, len(split.train), len(split.test), labels, [s.argmax(axis=1) for s in scores],
                   rows, saved)
    return 0


def _copy_model(plan: Plan, source: Path, seed: int, seeds: int) -> Path:
    """The run folder's model file of ``seed``, written to --save-model (FILE-seedN.ext with seeds)."""
    target = plan.save_model if seeds == 1 else plan.save_model.with_name(
        f"{plan.save_model.stem}-seed{seed}{plan.save_model.suffix}")
    return write_bytes(target, source.read_bytes())


def _print_summary(plan: Plan, n_train: int, n_test: int, labels: np.ndarray,
                   per_seed: list[np.ndarray], rows: pd.DataFrame, saved: list[Path]) -> None:
    combine = ("averaged predict_proba" if hasattr(plan.entry.cls, "predict_proba")
               else "majority vote (the model has no predict_proba)")
    n = len(per_seed)
    seeds = f"{n} (0..{n - 1}), {combine}" if n > 1 else "1 (seed 0)"
    if n > 1:
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
        f"CPU:        fit {rows['fit_cpu_s'].sum():.1f} CPU-s ({rows['fit_wall_s'].sum():.1f} s wall), "
        f"predict {rows['predict_cpu_s'].sum():.1f} CPU-s, {plan.config.threads} thread(s) per worker",
        f"run:        {plan.config.run_dir} (one row per seed; --resume continues a stopped submission)",
    ]
    lines += [f"model file: {path}" for path in saved]
    print("\n".join(lines), flush=True)


def parse_params(text: str | None) -> dict[str, Any]:
    """``--params`` JSON as a dict (empty when not given), checked as ``run --params`` is."""
    from digitbench.benchmark.checks import parse_params as check

    return {} if text is None else check("--params", text)


def write_submission(path: Path, labels: Any) -> None:
    """Write ``ImageId,Label`` rows (ImageId = 1..n in order) to ``path`` atomically."""
    write_text(path, "ImageId,Label\n" + "".join(f"{i},{int(label)}\n"
                                                  for i, label in enumerate(labels, start=1)))
