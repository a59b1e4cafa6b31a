"""Every setting of a run, declared once: its name (the TOML key and the Python API's keyword), its
type and default, the check of its values, its help, its flag and the report's label for it.

From :data:`SETTINGS` come the ``run`` command's options (and the ones ``submit`` shares), the TOML
loader and its errors, :class:`~.config.RunConfig`, the report's settings table and the docs' CLI
reference. Adding a setting is one :class:`Setting` here, plus its use.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitbench.benchmark import checks
from digitbench.benchmark.presets import preset_names
from digitbench.common.errors import InputError
from digitbench.common.runtime import BACKENDS, KerasRuntime

#: The values some settings allow; the modules that use them import them from here. ``random`` is
#: random search, the baseline of the tuning curves: an Optuna study with its RandomSampler
#: (whatever ``--sampler`` says for ``optuna``), the same first trial and pruner.
TUNERS = ("none", "optuna", "keras-tuner", "random")
OPTUNA_SAMPLERS = ("tpe", "random")
OPTUNA_PRUNERS = ("none", "median", "hyperband")
KERAS_TUNER_ORACLES = ("random", "bayesian", "hyperband")
#: What an Optuna study optimises (--objectives): validation accuracy first, then optionally a cost:
#: a trial's fit CPU-s, or its predict CPU ms per image scored.
ACCURACY, FIT_CPU, PREDICT_MS = "accuracy", "fit-cpu", "predict-ms"
OBJECTIVES = (ACCURACY, FIT_CPU, PREDICT_MS)
#: Validation checks an epoch of a final timed to --target, unless ``--target-checks`` says (and
#: what every run recorded before that setting existed was checked with).
TARGET_CHECKS = 4
#: What a configuration costs (--cost): its fit CPU-s, or its predict CPU ms per image.
COSTS = ("fit", "predict")
#: The cost each cost objective of --objectives minimises, as --cost names it.
OBJECTIVE_COSTS = {FIT_CPU: COSTS[0], PREDICT_MS: COSTS[1]}
#: Front finals per study unless --front-finals says: the front's cheapest, its most accurate, and
#: one between.
FRONT_FINALS = 3
BUILTIN_MODELS = ("logreg", "linear-svm", "svm-rbf", "lenet-relu", "lenet-tanh")


@dataclass(frozen=True)
class Setting:
    """One setting. ``help`` may say ``{default}``; ``action`` is how its flag takes a value:
    ``value`` (``--seeds 3``), ``on`` (``--resume``), ``off`` (``--no-onnx`` for a setting that is on
    by default) or ``append`` (``--model-path``, repeatable)."""

    name: str
    type: str                          # RunConfig's annotation
    default: Any                       # or a callable, for defaults read when a run starts
    check: checks.Check
    help: str
    label: str | None = None           # the report's settings table; None: not shown there
    flag: str | None = None            # default: "--" + name with "-" for "_"
    metavar: str | None = None
    arg: Callable[[str], Any] | None = None  # argparse's type (int, float, Path); None: text
    action: str = "value"
    tuning: bool = False               # in the run command's tuning group
    submit: bool | str = False         # also an option of `digitbench submit` (a text: its help there)
    env: str | None = None             # an environment variable that gives the default
    job: bool = False                  # every job carries it as it is (a Job field of the same name)
    cli: bool = True                   # False: a TOML key and API keyword only

    @property
    def option(self) -> str:
        if self.action == "off":
            return f"--no-{self.name.replace('_', '-')}"
        return self.flag or f"--{self.name.replace('_', '-')}"

    def initial(self) -> Any:
        """The default as a run starts (a callable default is called then)."""
        return self.default() if callable(self.default) else self.default

    def from_env(self) -> Any:
        """The value the environment variable gives, checked; None where it is not set."""
        text = os.environ.get(self.env) if self.env else None
        if not text:
            return None
        try:
            value = self.arg(text) if self.arg else text
        except ValueError:
            value = text
        return self.check(self.env, value)


def _preset(name: str, value: Any) -> str:
    if value not in preset_names():
        raise InputError(f"{name}: unknown preset {value!r}; known: {', '.join(preset_names())}")
    return value


S = Setting
SETTINGS: tuple[Setting, ...] = (
    S("preset", "str | None", None, _preset, "settings to start from: {presets} (see `digitbench "
      "list presets`; each is a TOML file of these keys)", label="preset"),
    S("datasets", "tuple[str, ...]", ("mnist-5k",), checks.names, "dataset spec(s), comma-separated "
      "(see `digitbench list`)", label="datasets", flag="--dataset"),
    S("models", "tuple[str, ...]", BUILTIN_MODELS, checks.names, "model names, comma-separated "
      "(default: the five built-ins)", label="models"),
    S("tuners", "tuple[str, ...]", ("none",), checks.names_of(*TUNERS), "none, optuna, keras-tuner, "
      "random (random search, the baseline), or several comma-separated", label="tuners",
      flag="--tuner", tuning=True),
    S("trials", "int", 20, checks.positive_int, "trials per dataset x model x tuner (default "
      "{default})", label="trials per study", arg=int, tuning=True),
    S("budget", "float | None", None, checks.positive_number, "CPU-seconds per dataset x model x "
      "tuner; stops at a trial boundary", label="CPU-s per study", metavar="CPU_SECONDS", arg=float,
      tuning=True),
    S("study_seeds", "int", 1, checks.seeds, "repeat each study with seeds 0..N-1 (N at most "
      "1,000) for the tuning curves' bands (finals refit study 0's choice; default {default})",
      label="studies per tuner (--study-seeds)", metavar="N", arg=int, tuning=True),
    S("refit_defaults", "bool", True, checks.flag, "do not refit the defaults beside the tuned "
      "parameters (by default, where tuning chose other values, the finals refit the defaults too, "
      "on the same seeds, so the report can say what tuning bought on the test set)", action="off",
      tuning=True),
    S("cheap_finals", "bool", True, checks.flag, "do not refit the cheapest trial within one "
      "standard error of the best on validation (by default the finals also refit it, where it is "
      "not what the study chose, so the report can say what tuning saves in CPU at equal accuracy)",
      action="off", tuning=True),
    S("front_finals", "int", FRONT_FINALS, checks.whole_number, "also refit up to K configurations "
      "of each study's Pareto front of validation accuracy against --cost (its cheapest, its most "
      "accurate and between; default {default}; 0: none)", label="front finals per study",
      metavar="K", arg=int, tuning=True),
    S("cost", "str", "fit", checks.one_of(*COSTS), "what a trial costs for the one-standard-error "
      "and front finals: fit (fit CPU-s, default) or predict (predict CPU ms per image)",
      label="cost of a configuration (--cost)", tuning=True),
    S("sampler", "str", "tpe", checks.one_of(*OPTUNA_SAMPLERS), "Optuna sampler: tpe (default) or "
      "random", label="sampler", tuning=True),
    S("pruner", "str", "median", checks.one_of(*OPTUNA_PRUNERS), "Optuna pruner: median (default), "
      "hyperband or none", label="pruner", tuning=True),
    S("objectives", "tuple[str, ...]", (ACCURACY,), checks.objectives(*OBJECTIVES), "what the "
      "Optuna and random studies optimise: accuracy (default), or accuracy,fit-cpu or "
      "accuracy,predict-ms (two objectives: validation accuracy up and the trial's fit CPU-s or "
      "predict ms per image down, which --cost then follows; no pruning; not with keras-tuner)",
      label="objectives", metavar="accuracy[,fit-cpu|predict-ms]", tuning=True),
    S("oracle", "str", "bayesian", checks.one_of(*KERAS_TUNER_ORACLES), "keras-tuner oracle: "
      "bayesian (default), random, hyperband", label="oracle", tuning=True),
    S("tune_subsample", "int | None", None, checks.positive_int, "tuning trials train on a "
      "stratified N-image subsample", label="tuning subsample", metavar="N", arg=int, tuning=True, job=True),
    S("cv", "int", 5, checks.positive_int, "folds scoring trials of models without epochs (default "
      "{default}; 1: hold-out)", label="folds (models without epochs)", metavar="K", arg=int,
      tuning=True),
    S("storage", "str | None", None, checks.storage, "where the Optuna studies are kept (default "
      "sqlite:///RUN_DIR/optuna.db; any URL optuna-dashboard reads)", tuning=True),
    S("seeds", "int", 1, checks.seeds, "number of seeds per model (0..N-1, N at most 1,000; default "
      "{default})", label="seeds", arg=int,
      submit="train N seeds and average their predict_proba (default {default})"),
    S("epochs", "int | None", None, checks.positive_int, "epochs for models that train in epochs",
      label="epochs", arg=int, submit=True),
    S("threads", "int", lambda: os.cpu_count() or 1, checks.positive_int, "threads per worker "
      "process (default: the cores shared out among --workers)", label="threads", arg=int,
      submit=True),
    S("workers", "int | None", None, checks.positive_int, "worker processes on this machine that "
      "run the jobs (default: $DIGITBENCH_WORKERS, else one per core, each with 1 thread; 1: "
      "everything in this process, a fixed order)",
      arg=int, submit=True, env="DIGITBENCH_WORKERS"),
    S("cluster", "str | None", None, checks.cluster, "run the jobs on the workers of this Dask "
      "scheduler instead (pip install 'digitbench[dask]'; start workers with --nthreads 1)",
      metavar="tcp://HOST:PORT", submit=True),
    S("out", "Path | None", None, checks.path, "run folder (default runs/<preset or dataset>)",
      arg=Path),
    S("resume", "bool", False, checks.flag, "continue the run in --out, skipping finished jobs",
      action="on", submit="continue a stopped submission: the seeds already in --run-dir are kept"),
    S("overwrite", "bool", False, checks.flag, "discard the results already in --out and start "
      "again", action="on", submit="discard the seeds already in --run-dir and train them again"),
    S("data_dir", "Path | None", None, checks.path, "folder with the IDX files for "
      "mnist/fashion-mnist", arg=Path),
    S("native_size", "bool", False, checks.flag, "keep images that are not 28x28 at their own size "
      "instead of preparing them as MNIST's were (only models that take any size)", action="on"),
    S("test_on", "tuple[str, ...]", (), checks.names, "also test every final model once on the test "
      "part of these datasets (never tuned on them); the report tabulates trained-on against "
      "tested-on", metavar="SPEC[,SPEC]"),
    S("cache_dir", "Path | None", None, checks.path, "dataset cache (default: $DIGITBENCH_CACHE, else "
      "~/.cache/digitbench)",
      arg=Path, submit=True, env="DIGITBENCH_CACHE"),
    S("model_paths", "tuple[str, ...]", (), checks.model_paths, "register an outside model class: "
      "package.module:Class (installed, or a module in the current folder) or path/to/file.py:Class "
      "(repeatable)", flag="--model-path", metavar="MODULE:CLASS|FILE.py:CLASS", action="append",
      submit=True, job=True),
    S("deterministic", "bool", KerasRuntime.deterministic, checks.flag, "switch on TensorFlow's op "
      "determinism: the same seed and threads give the same results (slower)",
      label="deterministic ops (--deterministic)", action="on"),
    S("latency_batch", "int", 1000, checks.positive_int, "large batch size for latency (default "
      "{default})", label="latency batch", arg=int, job=True),
    S("backend", "str", KerasRuntime.backend, checks.one_of(*BACKENDS), "Keras backend: "
      "tensorflow (default: $KERAS_BACKEND, as Keras reads it, else tensorflow), torch or jax (pip "
      "install 'digitbench[torch]' / '[jax]'); see benchmarks/RESULTS.md", env="KERAS_BACKEND"),
    S("steps_per_execution", "int", KerasRuntime.steps_per_execution, checks.positive_int, "Keras "
      "training steps per call into TensorFlow/JAX (default {default}: the same steps as 1, less "
      "overhead; torch always 1)", metavar="N", arg=int),
    S("target", "float | None", None, checks.fraction, "time each final that trains in epochs until "
      "its validation accuracy first reaches ACC (e.g. 0.99); such finals train on the training "
      "part only", label="time to validation accuracy (--target)", metavar="ACC", arg=float),
    S("stop_at_target", "bool", False, checks.flag, "with --target: end each such final's training "
      "once it reaches the target (its test accuracy is then the model's at that point)",
      label="training stopped at the target (--stop-at-target)", action="on"),
    S("target_checks", "int", TARGET_CHECKS, checks.positive_int, "with --target: validation checks "
      "an epoch, the time to the target read to 1/N of an epoch (default {default}; 1: at the end "
      "of each epoch only)", label="validation checks an epoch to the target (--target-checks)",
      metavar="N", arg=int, job=True),
    S("train_sizes", "tuple[int, ...] | str | None", None, checks.train_sizes, "learning curves: "
      "every final also trained on nested stratified subsets of these sizes (auto: 25 images a "
      "class, doubling up to the whole training part)", metavar="N1,N2,...|auto"),
    S("corruptions", "tuple[str, ...] | None", None, checks.corruptions, "also test every final on "
      "its test images under these MNIST-C corruptions (all: the 15), and measure how calibrated "
      "its probabilities are", metavar="all|NAME[,NAME]"),
    S("onnx", "bool", True, checks.flag, "do not export final models to ONNX and time them in ONNX "
      "Runtime", action="off"),
    S("save_models", "bool", False, checks.flag, "keep the final models in RUN_DIR/models/ (for "
      "`digitbench predict`)", action="on"),
    S("mlflow", "str | None", None, checks.mlflow_target, "also log the run to MLflow: a tracking "
      "server's URL (http://HOST:PORT) or a local folder (an MLflow database and artifacts there): "
      "a parent run per run folder and a nested run per final, each logged once (pip install "
      "'digitbench[mlflow]')", metavar="URL|FOLDER"),
    S("mlflow_trials", "bool", False, checks.flag, "with --mlflow: also log every tuning trial as a "
      "nested run", action="on"),
    S("params", "dict | None", None, checks.parse_params, "fixed parameter values as JSON, e.g. "
      "'{{\"epochs\": 5}}'", label="fixed params", tuning=True,
      submit="parameter values as JSON, e.g. '{{\"epochs\": 20}}'"),
    S("val_fraction", "float", 0.1, checks.fraction, "the part of the training data held out for "
      "validation", cli=False),
    S("test_fraction", "float", 0.2, checks.fraction, "the part of the labelled data held out as the "
      "test set where a dataset has no test split of its own", cli=False),
)
BY_NAME = {s.name: s for s in SETTINGS}
#: Other spellings of TOML keys and API keywords: the flags' singular names.
ALIASES = {"dataset": "datasets", "model_path": "model_paths", "tuner": "tuners"}


def help_text(setting: Setting) -> str:
    """The setting's help, with its default and the presets filled in (argparse-escaped)."""
    text = setting.help.format(default=setting.initial(), presets="{presets}")
    return text.replace("{presets}", ", ".join(preset_names())).replace("%", "%%")


def add_flags(parser: argparse.ArgumentParser, command: str = "run") -> None:
    """The options of ``command`` (``run``: every setting with a flag, the tuning ones in a group of
    their own; ``submit``: the ones it shares), each None unless given, so a preset or file fills it."""
    group = parser.add_argument_group("tuning (the same budget for every contender)") \
        if command == "run" else None
    for s in SETTINGS:
        if s.cli and (command == "run" or s.submit):
            add_flag(group if s.tuning and group is not None else parser, s.name, command)


def add_flag(parser: Any, name: str, command: str = "run") -> None:
    """The option of setting ``name`` (``parser``: a parser or an argument group)."""
    s = BY_NAME[name]
    text = help_text(s) if command != "submit" or s.submit is True else \
        str(s.submit).format(default=s.initial()).replace("%", "%%")
    kwargs: dict[str, Any] = {"dest": s.name, "help": text, "default": None}
    if s.action in ("on", "off"):
        kwargs["action"] = "store_true" if s.action == "on" else "store_false"
    else:
        kwargs.update(type=s.arg, metavar=s.metavar or s.option.lstrip("-").replace("-", "_").upper())
        if s.action == "append":
            kwargs["action"] = "append"
    parser.add_argument(s.option, **kwargs)
