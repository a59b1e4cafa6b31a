"""``report.md`` of a run folder, regenerated from ``results.csv`` and ``predictions/*.npz`` alone.

Entry point: :func:`write_report`. Every section reads the typed results table
(:func:`reports.table.load_table`), never the live model registry. Figures are PNGs beside the
report, linked relatively. Every file is written to a temp file in the run folder and moved into
place, so a failure leaves the previous report intact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from digitbench.benchmark.store import RESULTS_FILE, load_predictions
from digitbench.benchmark.store import dataset_slug as slugify
from digitbench.common.atomic import write_text
from digitbench.reports import figures, plots
from digitbench.reports.comparisons import comparisons_section
from digitbench.reports.cross_dataset import cross_dataset_section
from digitbench.reports.data_scaling import data_scaling_section
from digitbench.reports.format import DASH, code, count, md_table, natural_key, num, pct
from digitbench.reports.importance import importance_section
from digitbench.reports.leaderboard import details_table, leaderboard, leaderboard_table
from digitbench.reports.machine import distinct, machine_section
from digitbench.reports.robustness import robustness_section
from digitbench.reports.run_info import failed_and_pruned_section, run_section
from digitbench.reports.stats import confusion_counts, top_confusions
from digitbench.reports.summary import anchor, anchor_line, dataset_summary
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
        "Test accuracy is the mean over seeds with its 95% interval: ± the Student-t half-width "
        "of that mean, in percentage points (how much the accuracy moves from seed to seed); a model "
        "with a single seed gets the 95% Wilson interval of its accuracy on the test images instead "
        "(marked \"test set\": how much it could move on another test set of the same size), and so "
        "does a model whose seeds agree more closely than the test set's size allows. "
        "Costs are means over seeds: the fit's CPU-seconds, wall-clock milliseconds per image "
        "predicting one image at a time, the same in ONNX Runtime on one thread (median of 1,000 "
        "single-image calls; a note says when its labels differ from the model's own), and the "
        "multiply-adds one prediction costs, or the model's parameter count where those are not "
        "known. Best model in bold. The budgets, seeds and other timings are in the "
        f"[leaderboard details](#{anchor('details', slug)}).",
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
    lines += figures.gallery_section(final, board, dataset, run_dir, slug)
    return lines + details_section(board, slug)


def details_section(board: pd.DataFrame, slug: str) -> list[str]:
    """What the leaderboard leaves out of its contenders, with its caption."""
    return [anchor_line("details", slug), "### Leaderboard details", ""] + details_table(board) + [
        "",
        "The contenders of the leaderboard, in its order. Tuning budget is what each tuned "
        "contender was allowed per study (trials and CPU-seconds) and trials run what it used; "
        "\"defaults\" were not tuned. Times are means over seeds: the fit's wall-clock seconds, "
        "the CPU-seconds of predicting the whole test set, wall-clock milliseconds per image at a "
        "large batch, ONNX Runtime's median (99th percentile) over 1,000 single-image calls; then "
        "the multiply-adds one prediction costs and the parameter count.",
        "",
    ]


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
    if not any(len({s for s in found if 0 <= s < asked}) == asked for found in finished.values()):
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
