"""``report.md`` of a run folder, regenerated from ``results.csv`` and ``predictions/*.npz`` alone.

Entry point: :func:`write_report`. Every section reads the typed results table
(:func:`reports.table.load_table`), never the live model registry. Figures are PNGs beside the
report, linked relatively. Every file is written to a temp file in the run folder and moved into
place, so a failure leaves the previous report intact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.store import RESULTS_FILE, load_predictions
from digitbench.benchmark.store import dataset_slug as slugify
from digitbench.models.atomic import write_text
from digitbench.reports import figures, plots
from digitbench.reports.comparisons import comparisons_section
from digitbench.reports.cross_dataset import cross_dataset_section
from digitbench.reports.data_scaling import data_scaling_section
from digitbench.reports.format import DASH, code, count, md_table, natural_key, num, pct
from digitbench.reports.importance import importance_section
from digitbench.reports.machine import distinct, machine_section
from digitbench.reports.robustness import robustness_section
from digitbench.reports.run_info import failed_and_pruned_section, run_section
from digitbench.reports.stats import accuracy_interval, confusion_counts, mean_interval, top_confusions
from digitbench.reports.summary import anchor_line, dataset_summary
from digitbench.reports.table import FINAL, TRIAL, as_dict, load_table, trial_labels
from digitbench.reports.time_to_target import time_to_target_section
from digitbench.reports.tunability import tunability_section
from digitbench.reports.tuner_comparison import tuner_comparison_across, tuner_comparison_section

REPORT_FILE = "report.md"


def write_report(run_dir: Path) -> Path:
    """Write ``RUN_DIR/report.md`` and its figures from the run folder's files; return its path."""
    run_dir = Path(run_dir)
    frame = load_table(run_dir)
    lines = [
        "# digitbench report",
        "",
        f"_Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC from `{RESULTS_FILE}` "
        f"({len(frame)} rows) in run folder `{run_dir.name}`._",
        "",
    ]
    if frame.empty:
        lines += ["No results yet: `results.csv` has no rows.", ""]
    else:
        slugs = dataset_slugs(frame["dataset"])
        lines += ["## Summary", ""]
        for dataset, slug in slugs.items():
            rows = frame[frame["dataset"] == dataset]
            final = final_rows(rows)
            board = leaderboard(final) if not final.empty else pd.DataFrame()
            lines += dataset_summary(rows, final, board, dataset, run_dir, slug)
        lines += ["Settings, machine and package versions are at the end of the report.", ""]
        for dataset, slug in slugs.items():
            lines += dataset_section(frame[frame["dataset"] == dataset], dataset, run_dir, slug)
        lines += tuner_comparison_across(frame, run_dir)
        lines += failed_and_pruned_section(frame)
        lines += warnings_section(frame)
        lines += run_section(frame)
        lines += machine_section(frame)
    path = run_dir / REPORT_FILE
    write_text(path, "\n".join(lines).rstrip("\n") + "\n")
    return path


def dataset_slugs(datasets: pd.Series) -> dict[str, str]:
    """Dataset spec -> unique slug, in order of first appearance."""
    slugs: dict[str, str] = {}
    for spec in datasets.unique():
        slug, n = slugify(spec), 2
        while slug in slugs.values():
            slug, n = f"{slugify(spec)}-{n}", n + 1
        slugs[spec] = slug
    return slugs


# -- sections --------------------------------------------------------------------------------

def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Final ok rows of a typed frame with a test accuracy, the last row kept where a job was
    recorded twice."""
    ok = frame[(frame["kind"] == FINAL) & (frame["status"] == "ok") & frame["test_accuracy"].notna()]
    return ok.drop_duplicates(["dataset", "model", "tuner", "seed"], keep="last")


def leaderboard(final: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, tuner): mean test accuracy with its 95% interval and mean costs."""
    rows = []
    for (model, tuner), group in final.groupby(["model", "tuner"], sort=False):
        interval = mean_interval(group["test_accuracy"].to_numpy(dtype=float))
        means = {c: group[c].mean()
                 for c in ("fit_cpu_s", "fit_wall_s", "predict_cpu_s", "latency_ms_b1",
                           "latency_ms_bN", "onnx_ms_b1_p50", "onnx_ms_b1_p99", "macs")}
        mismatches = group["onnx_mismatches"].dropna()
        params = sorted({int(v) for v in group["n_params"].dropna()})
        tuning = as_dict(group["tuning"].iloc[-1])
        rows.append({"model": model, "tuner": tuner, "family": distinct(group["family"])[0],
                     "budget": _budget(tuner, tuning), "trials_run": tuning.get("trials_run"),
                     "seeds": interval.n, "accuracy": interval.mean,
                     "half_width": interval.half_width, "test_interval": _test_interval(group), **means,
                     "batch_N": distinct(group["batch_N"]), "params": params,
                     "onnx_mismatches": int(mismatches.max()) if len(mismatches) else None})
    board = pd.DataFrame(rows)
    return board.sort_values(["accuracy", "model", "tuner"], ascending=[False, True, True],
                             kind="stable", ignore_index=True)


def leaderboard_table(board: pd.DataFrame) -> list[str]:
    """The leaderboard as markdown, best row in bold."""
    batches = sorted({n for ns in board["batch_N"] for n in ns}, key=natural_key)
    batch = f"batch {batches[0]}" if len(batches) == 1 else "batch N"
    headers = ["#", "model", "tuner", "family", "tuning budget", "trials run", "seeds", "test accuracy",
               "95% CI", "fit CPU-s", "fit wall-s", "predict CPU-s", "ms/img, batch 1",
               f"ms/img, {batch}", "ONNX ms/img, batch 1: p50 (p99)", "multiply-adds/img", "params"]
    rows = []
    for rank, r in board.iterrows():
        test_ci = ("{:.2f}–{:.2f} (test set)".format(*(100 * x for x in r["test_interval"]))
                   if r["test_interval"] is not None else None)
        if r["half_width"] is not None and pd.notna(r["half_width"]):
            ci = f"± {100 * r['half_width']:.2f}"
            if test_ci and 2 * r["half_width"] < r["test_interval"][1] - r["test_interval"][0]:
                ci += f" over seeds; {test_ci}"  # seeds that agree say nothing of the test set's size
        else:
            ci = test_ci or "n=1, no interval"
        bn = num(r["latency_ms_bN"])
        if len(batches) > 1 and r["batch_N"]:
            bn += f" (N={'/'.join(r['batch_N'])})"
        params = _span(r["params"])
        model, acc = r["model"], pct(r["accuracy"])
        if rank == 0:
            model, acc = f"**{model}**", f"**{acc}**"
        trials = DASH if r["trials_run"] is None or pd.isna(r["trials_run"]) else int(r["trials_run"])
        rows.append([rank + 1, model, r["tuner"], r["family"], r["budget"], trials, r["seeds"], acc, ci,
                     num(r["fit_cpu_s"]), num(r["fit_wall_s"]), num(r["predict_cpu_s"]),
                     num(r["latency_ms_b1"]), bn, _onnx(r), _macs(r["macs"]), params])
    return md_table(headers, rows, "rllllrrrrrrrrrrrr")


def _onnx(r: pd.Series) -> str:
    if pd.isna(r["onnx_ms_b1_p50"]):
        return DASH
    text = f"{num(r['onnx_ms_b1_p50'])} ({num(r['onnx_ms_b1_p99'])})"
    if r["onnx_mismatches"]:
        text += f", {r['onnx_mismatches']} labels differ"
    return text


def _macs(value: Any) -> str:
    if value is None or pd.isna(value):
        return DASH
    return f"{value / 1e6:.2f} M" if value >= 1e5 else f"{value:,.0f}"


def _test_interval(group: pd.DataFrame) -> tuple[float, float] | None:
    """Wilson interval of the (mean) accuracy over the test images: how far the test set's size
    alone lets the accuracy be trusted; None where the test size is unknown."""
    n_test = group["n_test"]
    if n_test.isna().any() or int(n_test.iloc[0]) < 1:
        return None
    n = int(n_test.iloc[0])
    return accuracy_interval(round(float(group["test_accuracy"].mean()) * n), n)


def _budget(tuner: str, tuning: dict[str, Any]) -> str:
    """A study's budget as ``20 trials, 600 CPU-s``; "defaults" for untuned models."""
    if tuner == "none":
        return "defaults"
    if not tuning:
        return DASH
    budget = f"{tuning.get('trials', '?')} trials"
    return budget + (f", {num(tuning['budget_cpu_s'])} CPU-s" if tuning.get("budget_cpu_s") else "")


def _span(values: list[int]) -> str:
    if not values:
        return DASH
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}–{values[-1]:,}"


def dataset_section(rows: pd.DataFrame, dataset: str, run_dir: Path, slug: str) -> list[str]:
    """Sizes, test-set origin, leaderboard, comparisons, tuning and the figures of one dataset."""
    lines = [f"## Dataset {code(dataset)}", ""]
    final = final_rows(rows)
    sized = final if not final.empty else rows
    sizes = sized[["n_train", "n_val", "n_test"]].drop_duplicates()
    for _, s in sizes.iterrows():
        if s["n_val"] > 0:
            lines.append(f"- Images: {count(s['n_train'])} train, {count(s['n_val'])} validation, "
                         f"{count(s['n_test'])} test.")
        else:  # final models train on the whole training part, validation included
            lines.append(f"- Final models trained on {count(s['n_train'])} images "
                         f"and tested once on {count(s['n_test'])}.")
    for split in distinct(sized["test_split"]):
        lines.append(f"- Test set: {split}")
    for preparation in distinct(sized["preparation"]):
        lines.append(f"- Pictures: {preparation}")
    lines.append("")
    if final.empty:
        return lines + ["No model finished on this dataset (see Failed and pruned jobs).", ""]
    board = leaderboard(final)
    lines += [anchor_line("leaderboard", slug), "### Leaderboard", ""] + leaderboard_table(board) + [""]
    lines += [
        "Tuning budget is what each tuned contender was allowed per study (trials and CPU-seconds) "
        "and trials run what it used; \"defaults\" were not tuned. "
        "Test accuracy is the mean over seeds; 95% CI is the Student-t interval of that mean, "
        "in percentage points (how much the accuracy moves from seed to seed); a model with a single "
        "seed gets the 95% Wilson interval of its accuracy on the test images instead (marked "
        "\"test set\": how much it could move on another test set of the same size), and so does a "
        "model whose seeds agree more closely than the test set's size allows. "
        "Times are means over seeds: fit and predict CPU-seconds "
        "(predicting the whole test set), wall-clock milliseconds per image at batch size 1 "
        "and at a large batch; then the model exported to ONNX and run in ONNX Runtime on one thread "
        "(median and 99th percentile of 1,000 single-image calls; a note says when its labels differ "
        "from the model's own), and the multiply-adds one prediction costs. Best model in bold.",
        "",
    ]
    lines += seed_invariant_note(final, rows)
    lines += time_to_target_section(final)
    lines += cross_dataset_section(final, dataset)
    lines += _anchored("robustness", slug, robustness_section(final, dataset, run_dir, slug))
    lines += [anchor_line("comparisons", slug)] + comparisons_section(rows, final, board, run_dir)
    lines += figures.pareto_section(board, dataset, run_dir, slug)
    lines += tuning_section(final)
    lines += [anchor_line("tunability", slug)] + tunability_section(rows, final, run_dir)
    lines += figures.tuning_curves_section(rows, dataset, run_dir, slug)
    if (rows["kind"] == TRIAL).any():
        lines += [anchor_line("tuners", slug)] + tuner_comparison_section(rows, dataset, run_dir, slug)
        lines += [anchor_line("importance", slug)] + importance_section(rows, dataset, run_dir, slug)
    lines += _anchored("scaling", slug, data_scaling_section(rows, dataset, run_dir, slug))
    lines += figures.learning_curves_section(rows, final, board, dataset, run_dir, slug)
    best = board.iloc[0]
    group = final[(final["model"] == best["model"]) & (final["tuner"] == best["tuner"])]
    lines += confusion_section(group, dataset, run_dir, slug)
    return lines + figures.gallery_section(final, board, dataset, run_dir, slug)


def _anchored(kind: str, slug: str, section: list[str]) -> list[str]:
    """A section with its anchor before it; nothing for a section with nothing to say."""
    return [anchor_line(kind, slug), *section] if section else []


def seed_invariant_note(final: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """Which models ran one final where the run asked for several seeds, because their fit does not
    depend on the seed; nothing when there are none.

    The rows do not record that property; it is read from what ran: the run asked for N >= 2 seeds
    (``settings``), the model has final rows (of any status) at seed 0 only, and another model
    finished finals at all N seeds on this dataset, so the run did not stop before the other seeds.
    """
    asked = max((as_dict(s).get("seeds", 1) for s in final["settings"]), default=1)
    if asked < 2:
        return []
    seeds = {model: set(group["seed"]) for model, group in rows[rows["kind"] == FINAL].groupby("model")}
    finished = {model: set(group["seed"]) for model, group in final.groupby("model")}
    if not any(set(range(asked)) <= found for found in finished.values()):
        return []
    once = sorted(model for model in finished if seeds[model] == {0})
    if not once:
        return []
    names = ", ".join(code(n) for n in once)
    return [f"{names}: the fit does not depend on the seed (a deterministic solver), so one final "
            f"(seed 0) stands for all {asked} seeds; its interval is the test-set one.", ""]


def tuning_section(final: pd.DataFrame) -> list[str]:
    """The budget every tuned contender shared, then what each study used (from ``tuning``)."""
    studies = {(r["model"], r["tuner"]): as_dict(r["tuning"]) for r in final.to_dict("records")
               if r["tuner"] != "none"}
    if not studies:
        return ["All models trained with their default parameters (no tuning).", ""]
    budgets = {(t.get("trials"), t.get("budget_cpu_s")) for t in studies.values()}
    lines = ["### Tuning", ""]
    if len(budgets) == 1:
        trials, cpu = next(iter(budgets))
        cpu_text = f" and {num(cpu)} CPU-seconds" if cpu else ""
        lines.append(f"Every tuned contender had the same budget: at most {trials} trials{cpu_text} "
                     "per model and tuner. The test set was not used in tuning; the finals refit "
                     "the chosen trial on the whole training part. Where the first trial was the "
                     "model's defaults, a better trial replaced them only if it beat them by more "
                     "than one standard error of the validation estimate.")
    else:
        lines.append("**Budgets differ between contenders** (see the table): their comparison is "
                     "not on equal terms.")
    rows = []
    for (model, tuner), t in studies.items():
        method = t.get("sampler") and f"{t['sampler']}, {t.get('pruner')} pruner" or t.get("oracle")
        budget = f"{t.get('trials')} trials" + (f", {num(t['budget_cpu_s'])} CPU-s"
                                                 if t.get("budget_cpu_s") else "")
        scoring = (f"{t.get('scoring', DASH)}: trained on {count(t.get('tune_images'))}, "
                   f"scored on {count(t.get('val_images'))}")
        rows.append([model, tuner, method or DASH, budget, scoring, t.get("trials_run", DASH),
                     t.get("pruned", DASH), t.get("failed", DASH), num(t.get("cpu_s_used")),
                     t.get("stopped_by", DASH),
                     pct(t["best_val_accuracy"]) if t.get("best_val_accuracy") is not None else DASH,
                     t.get("chosen_because", DASH)])
    headers = ["model", "tuner", "method", "budget", "trials scored by", "trials run", "pruned", "failed",
               "tuning CPU-s", "stopped by", "best val accuracy", "refit"]
    return lines + [""] + md_table(headers, rows, "lllllrrrrlrl") + [""]


def confusion_section(group: pd.DataFrame, dataset: str, run_dir: Path, slug: str) -> list[str]:
    """The best model's confusion matrix (its first seed with a predictions file) and caption."""
    model, tuner = group["model"].iloc[0], group["tuner"].iloc[0]
    lines = ["### Best model: confusion matrix", ""]
    seeds = sorted(group.to_dict("records"), key=lambda r: natural_key(r["seed"]))
    with_file = [r for r in seeds if isinstance(r["predictions"], str) and r["predictions"]]
    if not with_file:
        return lines + [f"No predictions were recorded for {model}.", ""]
    row = with_file[0]
    try:
        y_true, y_pred = load_predictions(run_dir, row["predictions"])
        counts = confusion_counts(y_true, y_pred)
    except (OSError, KeyError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return lines + [f"No confusion matrix: {code(row['predictions'])} could not be read "
                        f"({why}).", ""]
    name = f"confusion-{slug}.png"
    title = f"{model} on {dataset} (seed {row['seed']})"
    plots.confusion_matrix(y_true, y_pred, title, run_dir / name)
    n, correct = int(counts.sum()), int(np.trace(counts))
    which = (f"seed {row['seed']}, the first of {len(seeds)} seeds" if len(seeds) > 1
             else f"seed {row['seed']}, its only seed")
    lines += [f"![Confusion matrix of {model} on {dataset}]({name})", ""]
    caption = (f"{model} (tuner {tuner}, {which}) on the {n:,} test images: "
               f"{correct:,} correct ({pct(correct / n) if n else DASH}). "
               "Rows are true digits, columns predicted digits; off-diagonal cells are mistakes.")
    mistakes = top_confusions(counts)
    if mistakes:
        caption += " Most frequent mistakes: " + ", ".join(
            f"{t} read as {p} ({k})" for t, p, k in mistakes) + "."
    return lines + [caption, ""]


def warnings_section(frame: pd.DataFrame) -> list[str]:
    """Finished jobs that raised warnings (a solver that did not converge, say)."""
    warned = frame[(frame["status"] == "ok") & frame["warnings"].notna()]
    if warned.empty:
        return []
    warned = warned.assign(trial=trial_labels(warned))
    key = ["dataset", "model", "tuner", "trial", "seed"]
    rows = [[code(str(r["dataset"])), r["model"], r["tuner"], r["trial"], r["seed"], r["warnings"]]
            for r in warned[key + ["warnings"]].astype(object).fillna(DASH).to_dict("records")]
    return ["## Warnings", "", "These jobs finished but warned; their results stand as measured.",
            ""] + md_table([*key, "warnings"], rows) + [""]
