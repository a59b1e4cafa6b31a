"""Several run folders side by side (two machines, two backends, two versions): ``comparison.md``.

``digitbench report RUN_A RUN_B [--out DIR]`` regenerates each run's own report and then this one,
from the runs' results files and prediction files alone. The first run is the reference: every other
run is compared with it per dataset, model and tuner on mean test accuracy and fit CPU-seconds, and,
where both runs predicted the very same test images, with a paired McNemar test of the first seed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from digitbench.benchmark.results import load_table
from digitbench.benchmark.store import load_predictions
from digitbench.common.atomic import write_text
from digitbench.common.errors import InputError
from digitbench.reports import plots
from digitbench.reports.format import DASH, code, contender_labels, md_table, num, pct_interval
from digitbench.reports.leaderboard import leaderboard
from digitbench.reports.machine import environment
from digitbench.reports.run_info import busy_wall_s, invocations
from digitbench.reports.stats import ACCURACY_RULE, ALPHA, paired_comparison
from digitbench.reports.table import as_dict, dataset_slugs, final_rows

COMPARISON_FILE = "comparison.md"


def default_out(run_dirs: list[Path]) -> Path:
    """``compare-A-vs-B`` beside the first run folder."""
    names = "-vs-".join(Path(d).resolve().name for d in run_dirs)
    return Path(run_dirs[0]).resolve().parent / f"compare-{names}"


def labels_of(run_dirs: list[Path]) -> list[str]:
    """Short unique labels: the folder names, numbered where two are alike."""
    names = [Path(d).resolve().name for d in run_dirs]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def write_comparison(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write ``OUT_DIR/comparison.md`` and its figure(s); returns the report's path."""
    run_dirs = [Path(d) for d in run_dirs]
    if len({d.resolve() for d in run_dirs}) < len(run_dirs):
        raise InputError("report: the same RUN_DIR is given twice")
    frames = [load_table(d) for d in run_dirs]
    labels = labels_of(run_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# digitbench: runs side by side", "",
             f"_Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC from the results files of "
             f"{len(run_dirs)} run folders; the first, {code(labels[0])}, is the reference._", ""]
    lines += runs_table(run_dirs, frames, labels)
    every = pd.concat([f.assign(_run=i) for i, f in enumerate(frames)], ignore_index=True)
    for dataset, slug in dataset_slugs(every["dataset"]).items():
        lines += dataset_comparison(dataset, slug, run_dirs, frames, labels, out_dir)
    path = out_dir / COMPARISON_FILE
    write_text(path, "\n".join(lines).rstrip("\n") + "\n")
    return path


def runs_table(run_dirs: list[Path], frames: list[pd.DataFrame], labels: list[str]) -> list[str]:
    """What distinguishes the runs: machine, threads, backend, versions that differ, totals."""
    envs = [environment(f) for f in frames]
    found = [invocations(f) for f in frames]
    rows: list[list[str]] = [
        ["folder", *(code(str(d)) for d in run_dirs)],
        ["CPU", *(", ".join(str(m.get("cpu", DASH)) for m in e.machines) or DASH for e in envs)],
        ["cores", *(", ".join(str(m.get("cores", DASH)) for m in e.machines) or DASH for e in envs)],
        ["threads", *(", ".join(e.threads) or DASH for e in envs)],
    ]
    settings = [[as_dict(c) for c in f["settings"]] for f in frames]
    shown = (("backend", "Keras backend"), ("preset", "preset"), ("deterministic", "deterministic"))
    for key, label in shown:
        values = [", ".join(sorted({str(s[key]) for s in ss if s.get(key) is not None})) or DASH
                  for ss in settings]
        if any(v != DASH for v in values):
            rows.append([label, *values])
    packages = list(dict.fromkeys(p for e in envs for p in e.versions))
    for package in packages:
        values = [", ".join(e.versions.get(package, [])) or DASH for e in envs]
        if len(set(values)) > 1:
            rows.append([package, *values])
    rows.append(["git revision", *(", ".join(sorted({r for i in inv for r in i.git_revs})) or DASH
                                   for inv in found)])
    rows.append(["rows", *(str(len(f)) for f in frames)])
    rows.append(["wall-s", *(num(busy_wall_s(inv)) for inv in found)])
    rows.append(["CPU-s", *(num(sum(i.cpu_s for i in inv if i.cpu_s is not None))
                            if any(i.cpu_s is not None for i in inv) else DASH for inv in found)])
    lines = ["## Runs", ""] + md_table(["", *(code(label) for label in labels)], rows) + [""]
    return lines + ["Package rows list only the packages whose versions differ between the runs. "
                    "Wall-s and CPU-s are the runs' totals (see each run's own report).", ""]


def dataset_comparison(dataset: str, slug: str, run_dirs: list[Path], frames: list[pd.DataFrame],
                       labels: list[str], out_dir: Path) -> list[str]:
    """Leaderboards of one dataset joined on (model, tuner), then paired tests, then the figure."""
    boards, finals = [], []
    for frame in frames:
        final = final_rows(frame[frame["dataset"] == dataset])
        finals.append(final)
        boards.append(leaderboard(final) if not final.empty else None)
    lines = [f"## Dataset {code(dataset)}", ""]
    present = [label for label, b in zip(labels, boards, strict=True) if b is not None]
    if len(present) < 2:
        return lines + [f"Only {', '.join(map(code, present)) or 'no run'} has final results on this "
                        "dataset: nothing to compare.", ""]
    keys = list(dict.fromkeys((m, t) for b in boards if b is not None
                              for m, t in zip(b["model"], b["tuner"], strict=True)))
    ref = boards[0]
    headers = ["model", "tuner"]
    for label in labels:
        headers += [f"{label}: accuracy", f"{label}: fit CPU-s"]
    for label in labels[1:]:
        headers += [f"{label} − {labels[0]}: points", f"{label} / {labels[0]}: fit CPU"]
    rows = []
    for model, tuner in keys:
        cells = [_entry(b, model, tuner) for b in boards]
        row = [model, tuner]
        for c in cells:
            row += [_accuracy(c), num(c["fit_cpu_s"]) if c is not None else DASH]
        for c in cells[1:]:
            r = cells[0]
            both = r is not None and c is not None
            row += [f"{100 * (c['accuracy'] - r['accuracy']):+.2f}" if both else DASH,
                    _ratio(c["fit_cpu_s"], r["fit_cpu_s"]) if both else DASH]
        rows.append(row)
    lines += md_table(headers, rows, "ll" + "r" * (len(headers) - 2)) + [""]
    lines += [f"Accuracy is the mean test accuracy over seeds with its {ACCURACY_RULE}; fit CPU-s "
              f"the mean over seeds. The last columns "
              f"compare each run with the reference {code(labels[0])}: accuracy difference in "
              "percentage points and the ratio of fit CPU-seconds (below 1: cheaper).", ""]
    if ref is not None:
        lines += paired_lines(keys, run_dirs, finals, labels)
    lines += _figure(dataset, slug, boards, labels, out_dir)
    return lines


def _entry(board: pd.DataFrame | None, model: str, tuner: str) -> dict | None:
    if board is None:
        return None
    match = board[(board["model"] == model) & (board["tuner"] == tuner)]
    return None if match.empty else match.iloc[0].to_dict()


def _accuracy(cell: dict | None) -> str:
    if cell is None:
        return DASH
    return pct_interval(cell["accuracy"], cell["low"], cell["high"])


def _ratio(value: float, reference: float) -> str:
    if pd.isna(value) or pd.isna(reference) or reference == 0:
        return DASH
    return f"{value / reference:.2f}x"


def paired_lines(keys: list[tuple[str, str]], run_dirs: list[Path], finals: list[pd.DataFrame],
                 labels: list[str]) -> list[str]:
    """Per model and tuner, each run against the reference on the same images (first shared seed)."""
    items = []
    for model, tuner in keys:
        for i in range(1, len(run_dirs)):
            line = _paired(model, tuner, (run_dirs[0], finals[0], labels[0]),
                           (run_dirs[i], finals[i], labels[i]))
            if line:
                items.append(line)
    if not items:
        return ["No model has prediction files on the same test images in two runs, so there are "
                "no paired tests.", ""]
    return (["Paired on the same test images (McNemar's exact test, first seed both runs share):", ""]
            + items + [""])


def _paired(model: str, tuner: str, ref: tuple, other: tuple) -> str | None:
    seeds_of = [{r["seed"]: r for r in f[(f["model"] == model) & (f["tuner"] == tuner)].to_dict("records")
                 if isinstance(r["predictions"], str) and r["predictions"]} for _, f, _ in (ref, other)]
    shared = sorted(set(seeds_of[0]) & set(seeds_of[1]))
    if not shared:
        return None
    seed = shared[0]
    try:
        y_ref, p_ref = load_predictions(ref[0], seeds_of[0][seed]["predictions"])
        y_other, p_other = load_predictions(other[0], seeds_of[1][seed]["predictions"])
    except (OSError, KeyError, ValueError):
        return None
    if y_ref.shape != y_other.shape or not np.array_equal(y_ref, y_other):
        return f"- {model} ({tuner}): the runs' test sets differ, so no paired test."
    if np.array_equal(p_ref, p_other):
        return f"- {model} ({tuner}), seed {seed}: identical predictions on all {y_ref.size:,} test images."
    r = paired_comparison(y_ref, p_other, p_ref)
    verdict = "significant at 5%" if r.p_value < ALPHA else \
        "**not significant** at 5%: the data do not show a difference"
    return (f"- {model} ({tuner}), seed {seed}: {other[2]} − {ref[2]} = {100 * r.difference:+.2f} points "
            f"(95% CI {100 * r.low:+.2f} to {100 * r.high:+.2f}), McNemar exact p = {r.p_value:.3g} "
            f"(b = {r.b} images only {other[2]} got right, c = {r.c} only {ref[2]}, n = {r.n:,}): {verdict}.")


def _figure(dataset: str, slug: str, boards: list[pd.DataFrame | None], labels: list[str],
            out_dir: Path) -> list[str]:
    points = {}
    for label, board in zip(labels, boards, strict=True):
        if board is None:
            continue
        names = contender_labels(zip(board["model"], board["tuner"], strict=True))
        points[label] = {name: (float(c), float(a)) for name, c, a in
                         zip(names, board["fit_cpu_s"], board["accuracy"], strict=True) if pd.notna(c)}
    if sum(bool(p) for p in points.values()) < 2:
        return []
    name = f"runs-{slug}.png"
    plots.runs_side_by_side(points, f"Runs side by side on {dataset}", out_dir / name)
    return [f"![Runs side by side on {dataset}]({name})", "",
            "Mean test accuracy against mean fit CPU-seconds (log scale), one marker shape per run; a "
            "grey line joins the same model across runs, so its slope shows what the other run "
            "trades in cost for accuracy.", ""]
