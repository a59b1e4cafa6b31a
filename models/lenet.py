"""LeNet in Keras 3: INPUT => CONV => ACT => POOL => CONV => ACT => POOL => FC => ACT => FC (softmax).

Two registry variants fix the activation, ``lenet-relu`` and ``lenet-tanh`` (the original), and
each starts from defaults of its own, chosen on validation (see the end of this module);
``lenet-speedrun`` is the CPU speedrun's recipe. Keras and TensorFlow are imported on first use, so
listing models stays instant.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from digitbench.common.runtime import KerasRuntime, current, use
from digitbench.models.base import DigitModel, Digits, ReportCallback
from digitbench.models.registry import register

PREDICT_CHUNK = 2048


def steps_per_execution(keras: Any, runtime: KerasRuntime | None = None) -> int:
    """Keras training steps per backend call: the runtime's (``run --steps-per-execution``; by
    default the one in force in this process), always 1 on the torch backend, which has only 1."""
    return (runtime or current()).steps_for(keras.backend.backend())


def import_keras() -> Any:
    """Import Keras with TensorFlow's C++ log noise silenced, under the process's runtime
    (:func:`common.runtime.current`).

    TensorFlow's thread pools are sized before it runs its first op: to the runtime's ``threads``,
    else to ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` (what
    ``benchmark.execution.timing.configure_threads`` sets); op determinism is switched on when the
    runtime asks for it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" not in sys.modules:
        with _c_stderr_silenced():  # absl's start-up lines ignore TF_CPP_MIN_LOG_LEVEL
            import keras
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # per-model retracing notes: Keras' own, not errors
        runtime = current()
        threading = tf.config.threading
        intra = runtime.threads or int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
        inter = runtime.threads or int(os.environ.get("TF_NUM_INTEROP_THREADS", "0"))
        try:
            if intra and threading.get_intra_op_parallelism_threads() != intra:
                threading.set_intra_op_parallelism_threads(intra)
            if inter and threading.get_inter_op_parallelism_threads() != inter:
                threading.set_inter_op_parallelism_threads(inter)
        except RuntimeError:  # already initialised by an earlier op: keep what is in force
            pass
        if runtime.deterministic:  # run --deterministic
            tf.config.experimental.enable_op_determinism()
    return keras


@contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null (C++ logging); Python exceptions still propagate."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def _traced_gradients_released() -> Iterator[None]:
    """Drop the gradient registrations that tracing a training step adds to TensorFlow's global
    registry, once the step is traced.

    Under TensorFlow 2.21, each Keras training function traces ``tf.distribute``'s all-reduce, whose
    ``custom_gradient`` registers a new ``CustomGradient-N`` entry holding the traced graph; entries
    are never removed, so every model trained in a process leaked about 15 MB (30 tuning trials:
    +450 MB RSS). Gradients are looked up only while tracing, so entries added during a finished
    ``fit`` are no longer needed.
    """
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry  # private: guarded below
    except (ImportError, AttributeError):
        yield
        return
    before = set(registry)
    try:
        yield
    finally:
        for name in [n for n in registry if n not in before and n.startswith("CustomGradient")]:
            registry.pop(name, None)


#: Pixel value 255 -> 1.0: the one scale both ``as_input`` and the trainer's first layer apply.
PIXEL_SCALE = 1 / 255


def as_input(images: np.ndarray) -> np.ndarray:
    """``(n, height, width)`` uint8 -> ``(n, height, width, 1)`` float32 in 0..1: what the LeNet
    (predicting, saved, exported) takes."""
    return np.multiply(images, np.float32(PIXEL_SCALE), dtype=np.float32)[..., np.newaxis]


def as_pixels(images: np.ndarray) -> np.ndarray:
    """``(n, height, width)`` uint8 -> ``(n, height, width, 1)`` uint8, a view: what ``fit`` feeds
    the trainer, which scales each batch in its graph as ``as_input`` does, to the same float32
    values, instead of a float copy of the whole set first (4x the memory: 169 MB for 54,000
    images; the fit's CPU-s measured no different, x0.985 over 8 rounds, benchmarks/RESULTS.md)."""
    return np.asarray(images, dtype=np.uint8)[..., np.newaxis]


class LeNet(DigitModel):
    """LeNet with a choice of activation, trained with Adam on cross-entropy.

    Defaults: 20 and 50 filters of 5x5 and a 500-wide dense layer (the modern LeNet recipe), dropout
    0.4 before the output, Adam at 3e-3 with batch 128 decayed to 0 by a cosine over 10 epochs, no
    augmentation. Measured on the official MNIST split (54,000 training images, one seed, 10 epochs,
    ``benchmarks/mnist_lenet.py``): 99.48%, and 99% validation accuracy after one epoch; 99.11% with
    the earlier defaults (Adam 1e-3 constant, batch 64, no dropout), 99.50% with batch normalisation
    and augmentation, at 1.5x the CPU-seconds (benchmarks/RESULTS.md, the recipe table).
    """

    name: ClassVar[str] = "lenet"
    family: ClassVar[str] = "cnn"
    any_image_size: ClassVar[bool] = True  # the input layer takes the training images' size
    trains_in_epochs: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "activation": "relu",
        "filters1": 20,
        "filters2": 50,
        "kernel_size": 5,
        "padding": "same",           # the first convolution's: "same" keeps 28x28, "valid" gives
                                     # 24x24 (LeNet-5's): a third fewer multiply-adds in all
        "dense_units": 500,
        "dropout": 0.4,
        "learning_rate": 3e-3,       # with batch 128 and no augmentation: 99% validation accuracy
        "batch_size": 128,           # on full MNIST after one epoch (benchmarks/RESULTS.md)
        "epochs": 10,
        "batch_norm": False,         # normalise each layer's outputs before the activation
        "lr_schedule": "cosine",     # or "constant", or "one-cycle" (see ONE_CYCLE); cosine: the
                                     # rate decays to 0 over the epochs
        "beta_1": 0.9,               # Adam's decay rates of its first and second moment estimates
        "beta_2": 0.999,             # (Keras' defaults)
        "ema_momentum": 0.0,         # > 0: Adam keeps an exponential moving average of the weights
                                     # with this momentum (Keras' use_ema; capped by the training's
                                     # length, see EMA_SPAN); validation sees it, and
                                     # the trained model is it (Polyak averaging)
        "augment": 0.0,              # training only: random shifts of up to this fraction of the
                                     # side and rotations of up to a quarter of it of a full turn
                                     # (0.1: 2.8 pixels and 9 degrees)
    }

    #: Parameter -> (lowest, highest) value a network can train with; None: no bound that side.
    RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "filters1": (1, None), "filters2": (1, None), "kernel_size": (1, None), "dense_units": (1, None),
        "dropout": (0.0, 0.99), "learning_rate": (1e-12, None), "batch_size": (1, None),
        "epochs": (1, None), "augment": (0.0, 0.5), "beta_1": (0.0, 0.999), "beta_2": (0.0, 0.9999),
        "ema_momentum": (0.0, 0.9999)}
    OPTIONS: ClassVar[dict[str, tuple[Any, ...]]] = {
        "activation": ("relu", "tanh"), "lr_schedule": ("constant", "cosine", "one-cycle"),
        "padding": ("same", "valid")}
    #: "one-cycle" (Smith & Topin's super-convergence, PyTorch ``OneCycleLR``'s defaults): the rate
    #: rises linearly from ``learning_rate / 25`` to ``learning_rate`` over the first 30% of the
    #: steps, then decays to 0 by a cosine over the rest.
    ONE_CYCLE: ClassVar[dict[str, float]] = {"warmup_fraction": 0.3, "start_divisor": 25.0}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Types (the contract's default), then each number within what the network can train with
        and each option among the known ones."""
        super().check_params(params)
        for name, (low, high) in cls.RANGES.items():
            value = params[name]
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = " and ".join(f"{word} {bound}" for word, bound in
                                      (("at least", low), ("at most", high)) if bound is not None)
                raise ValueError(f"{name} must be {bounds}, got {value!r}")
        for name, options in cls.OPTIONS.items():
            if params[name] not in options:
                raise ValueError(f"{name} must be one of {', '.join(options)}, got {params[name]!r}")

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        """Everything but the activation, which each registry variant fixes, and Adam's betas, the
        weights' moving average and the first convolution's padding, which keep the defaults unless
        a variant or ``--params`` sets them."""
        return {
            "filters1": space.int("filters1", 4, 48, log=True),
            "filters2": space.int("filters2", 8, 96, log=True),
            "kernel_size": space.choice("kernel_size", [3, 5]),
            "dense_units": space.int("dense_units", 64, 768, log=True),
            "dropout": space.float("dropout", 0.0, 0.6),
            "learning_rate": space.float("learning_rate", 1e-4, 1e-2, log=True),
            "batch_size": space.choice("batch_size", [32, 64, 128, 256]),
            "epochs": space.int("epochs", 4, 20),
            "batch_norm": space.choice("batch_norm", [False, True]),
            "lr_schedule": space.choice("lr_schedule", ["constant", "cosine", "one-cycle"]),
            "augment": space.float("augment", 0.0, 0.15),
        }

    def build(self, shape: tuple[int, int] = (28, 28)) -> Any:
        """The uncompiled Keras model for the current parameters and ``shape`` (height, width) of
        image: CONV => ACT => POOL => CONV => ACT => POOL => FC => ACT => FC (softmax), with batch
        normalisation before each activation when ``batch_norm``. Augmentation is not part of it
        (see :meth:`fit`)."""
        keras = import_keras()
        layers = keras.layers
        p = self.params
        act, k, bn = p["activation"], p["kernel_size"], p["batch_norm"]

        def block(layer: Any) -> list[Any]:  # a layer, [batch normalisation], its activation
            norm = [layers.BatchNormalization(momentum=0.9)] if bn else []
            return [layer, *norm, layers.Activation(act)]

        def pooled(conv: Any) -> list[Any]:
            """CONV => ACT => POOL; without batch normalisation computed as CONV => POOL => ACT,
            the same function (ReLU and tanh never decrease, so they commute with a maximum) with
            the activation on a quarter of the values (measured by benchmarks/speedrun.py: x0.99
            to x1.06 on the training steps, within the drift between runs)."""
            if bn:
                return [*block(conv), layers.MaxPooling2D(2)]
            return [conv, layers.MaxPooling2D(2), layers.Activation(act)]

        return keras.Sequential(
            [
                keras.Input((*shape, 1)),
                *pooled(layers.Conv2D(p["filters1"], k, padding=p["padding"], use_bias=not bn)),
                *pooled(layers.Conv2D(p["filters2"], k, padding="valid", use_bias=not bn)),
                layers.Flatten(),
                *block(layers.Dense(p["dense_units"], use_bias=not bn)),
                layers.Dropout(p["dropout"]),
                layers.Dense(10, activation="softmax"),
            ],
            name=f"lenet_{act}",
        )

    def _trainer(self, keras: Any, model: Any) -> Any:
        """What ``fit`` trains: the model behind the scaling of uint8 pixels to 0..1 (``as_pixels``)
        and, when ``augment``, random shifts and rotations (active in training only). The saved and
        exported model is the LeNet alone, which takes ``as_input``'s floats."""
        a = float(self.params["augment"])
        layers = keras.layers
        augment = [layers.RandomTranslation(a, a, fill_mode="constant"),
                   layers.RandomRotation(a / 4, fill_mode="constant")] if a > 0 else []
        return keras.Sequential([keras.Input(model.input_shape[1:], dtype="uint8"),
                                 layers.Rescaling(PIXEL_SCALE), *augment, model])

    #: The moving average spans at most this share of the training's steps: a momentum m averages
    #: about the last 1 / (1 - m) steps, so a short training (a few hundred images, a tuning trial)
    #: would otherwise be left near its first weights (m ** steps of them remain).
    EMA_SPAN = 0.1

    def _steps(self, n_train: int) -> int:
        p = self.params
        return max(1, -(-n_train // p["batch_size"]) * p["epochs"])

    def _ema_momentum(self, n_train: int) -> float:
        """``ema_momentum``, capped so that the average spans at most ``EMA_SPAN`` of the steps of
        ``n_train`` images (0: none; full MNIST at batch 128 for 10 epochs keeps up to 0.9976)."""
        return max(0.0, min(float(self.params["ema_momentum"]),
                            1 - 1 / (self.EMA_SPAN * self._steps(n_train))))

    def _optimizer(self, keras: Any, n_train: int) -> Any:
        p = self.params
        momentum = self._ema_momentum(n_train)
        return keras.optimizers.Adam(learning_rate=self._rate(keras, n_train), beta_1=p["beta_1"],
                                     beta_2=p["beta_2"], use_ema=momentum > 0,
                                     **({"ema_momentum": momentum} if momentum > 0 else {}))

    def _rate(self, keras: Any, n_train: int) -> Any:
        """The learning rate, or its schedule over the training steps of ``n_train`` images."""
        p = self.params
        rate: Any = p["learning_rate"]
        steps = self._steps(n_train)
        schedules = keras.optimizers.schedules
        if p["lr_schedule"] == "cosine":
            rate = schedules.CosineDecay(rate, decay_steps=steps)
        elif p["lr_schedule"] == "one-cycle":
            warmup = max(1, round(self.ONE_CYCLE["warmup_fraction"] * steps))
            rate = schedules.CosineDecay(rate / self.ONE_CYCLE["start_divisor"],
                                         decay_steps=max(1, steps - warmup), warmup_target=rate,
                                         warmup_steps=warmup)
        elif p["lr_schedule"] != "constant":
            raise ValueError(f"lr_schedule: expected one of {', '.join(self.OPTIONS['lr_schedule'])}, "
                             f"got {p['lr_schedule']!r}")
        return rate

    def fit(
        self,
        train: Digits,
        val: Digits | None = None,
        *,
        seed: int,
        report: ReportCallback | None = None,
    ) -> Self:
        cpu, wall = time.process_time(), time.perf_counter()
        keras = import_keras()
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        p = self.params
        model = self.build(train.images.shape[1:3])
        trainer = self._trainer(keras, model)
        trainer.compile(
            optimizer=self._optimizer(keras, len(train)),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=steps_per_execution(keras),
        )
        # with a moving average, every validation (Keras' at each epoch's end, and the checks within
        # one) sees the averaged weights, which the fit leaves in the model at its end
        averaged = [keras.callbacks.SwapEMAWeights()] if trainer.optimizer.use_ema else []
        with _traced_gradients_released():
            self._trace_training_step(trainer, len(train))
            initialised = (time.process_time() - cpu, time.perf_counter() - wall)
            callbacks = averaged + ([epoch_callback(report, val, averaged, initialised)]
                                    if report is not None else [])
            trainer.fit(
                as_pixels(train.images),
                train.labels,
                batch_size=p["batch_size"],
                epochs=p["epochs"],
                validation_data=None if val is None else (as_pixels(val.images), val.labels),
                callbacks=callbacks,
                verbose=0,
            )
        self.model_ = model
        self.predict_fn_ = None
        return self

    def _trace_training_step(self, trainer: Any, n_train: int) -> None:
        """The model's initialisation before it touches the training data (MLPerf's untimed model
        initialisation, see ``ReportCallback``): training steps on batches of zeros shaped as the
        fit's (a whole batch, and the epoch's last, partial one) trace Keras' training function,
        which the fit then reuses (otherwise about 2 CPU-s of its first call, measured on
        ``lenet-tanh``); then every variable those steps changed (the weights, the optimizer's
        moments, average and step count, the random layers' seed states) is put back as it was,
        so the fit trains exactly as without them."""
        batch = self.params["batch_size"]
        trainer.optimizer.build(trainer.trainable_variables)
        state = [*trainer.variables, *trainer.optimizer.variables]
        saved = [variable.numpy() for variable in state]
        # a whole batch and the epoch's last, partial one (if any): the batch shapes the fit feeds
        n = min(n_train, batch + n_train % batch)
        zeros = np.zeros((n, *trainer.input_shape[1:]), np.uint8)
        trainer.fit(zeros, np.zeros(n, np.int64), batch_size=batch, epochs=1, shuffle=False, verbose=0)
        for variable, value in zip(state, saved, strict=True):
            variable.assign(value)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        x = as_input(images)
        predict = self._predict_function()
        chunks = [predict(x[i : i + PREDICT_CHUNK]) for i in range(0, len(x), PREDICT_CHUNK)]
        return np.concatenate(chunks) if chunks else np.empty((0, 10), np.float32)

    def _predict_function(self) -> Any:
        """Inference compiled once for any batch size (TensorFlow: one trace, no retracing per
        shape, so timed predictions never include tracing); other backends call the model."""
        if getattr(self, "predict_fn_", None) is None:
            keras, model = import_keras(), self.model_
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
                def compiled(x: Any) -> Any:
                    return model(x, training=False)

                self.predict_fn_ = lambda x: compiled(x).numpy()
            else:
                self.predict_fn_ = _eager_predict(keras, model)
        return self.predict_fn_

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)

    @classmethod
    def prepare(cls, runtime: KerasRuntime | None = None) -> None:
        """Put ``runtime`` (the run's backend, threads and steps per execution) in force for every
        LeNet of this process, or keep the one in force when None; then import Keras and its
        backend (several CPU-seconds) before any timed fit. Seeding imports TensorFlow too where it
        is installed, whatever the backend.

        Raises ValueError when ``runtime`` names another backend than the Keras already loaded
        (Keras picks its backend once per process).
        """
        if runtime is not None:
            if "keras" not in sys.modules:
                os.environ["KERAS_BACKEND"] = runtime.backend  # Keras reads it once, on import
            elif (loaded := sys.modules["keras"].backend.backend()) != runtime.backend:
                raise ValueError(f"runtime backend {runtime.backend}: Keras is already loaded with "
                                 f"the {loaded} backend in this process")
            use(runtime)
        import_keras().utils.set_random_seed(0)  # fit seeds again

    def warm_up(self, images: np.ndarray) -> None:
        """Run every batch shape that predicting ``images`` (and one image) uses: oneDNN sets up
        each new shape once, which would otherwise land inside the timed prediction."""
        n = len(images)
        for size in sorted({1, min(n, PREDICT_CHUNK), n % PREDICT_CHUNK} - {0}):
            self.predict(images[:size])

    def onnx_input(self, images: np.ndarray) -> np.ndarray:
        return as_input(images)

    def export_onnx(self, path: str | Path) -> None:
        """Keras' own ONNX export (tf2onnx under TensorFlow): class probabilities out."""
        with _c_stderr_silenced():
            self.model_.export(str(path), format="onnx", verbose=False)

    def macs_per_image(self) -> int:
        """Multiply-adds of one forward pass: both convolutions and both dense layers."""
        p, k = self.params, self.params["kernel_size"]
        height, width = self.model_.input_shape[1:3] if hasattr(self, "model_") else (28, 28)
        if p["padding"] == "valid":
            height, width = height - k + 1, width - k + 1
        conv1 = height * width * p["filters1"] * k * k
        rows, cols = height // 2 - k + 1, width // 2 - k + 1  # after the first pooling, "valid"
        conv2 = rows * cols * p["filters2"] * k * k * p["filters1"]
        flat = (rows // 2) * (cols // 2) * p["filters2"]
        return conv1 + conv2 + flat * p["dense_units"] + p["dense_units"] * 10

    def n_params(self) -> int | None:
        model = getattr(self, "model_", None)
        return None if model is None else int(model.count_params())

    #: Saved as Keras' native archive, with the digitbench parameters as one more member.
    file_suffix: ClassVar[str] = ".keras"
    PARAMS_MEMBER: ClassVar[str] = "digitbench-params.json"

    def save(self, path: str | Path) -> None:
        """Write the trained network (Keras ``.keras`` archive) and the parameters to ``path``."""
        import_keras()
        self.model_.save(str(path))
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(self.PARAMS_MEMBER, json.dumps(self.params, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The model saved by :meth:`save`, read in Keras' safe mode (no code from the file runs)."""
        keras = import_keras()
        with zipfile.ZipFile(path) as archive:
            params = json.loads(archive.read(cls.PARAMS_MEMBER))
        model = cls(**params)
        model.model_ = keras.saving.load_model(str(path), compile=False, safe_mode=True)
        model.predict_fn_ = None
        return model


def _eager_predict(keras: Any, model: Any) -> Any:
    """Inference on the torch and JAX backends: the model called directly, no autograd graph, numpy
    out."""
    if keras.backend.backend() == "torch":
        import torch

        def predict(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():  # .numpy(): np.array() on a tensor warns under numpy 2
                return model(x, training=False).cpu().numpy()

        return predict
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


def _epoch_callback_class() -> type:
    keras = import_keras()

    class EpochCallback(keras.callbacks.Callback):
        """Reports each epoch's metrics, and the time spent on validation so far (``val_cpu_s``,
        ``val_wall_s``) and on the model's initialisation (``init_cpu_s``, ``init_wall_s``), which
        are not training time. When ``report.checks_per_epoch`` asks for
        more than one check an epoch, the validation accuracy is also measured and reported at
        those fractions of the epoch (epoch 1.25, 1.5, ...). When ``report`` returns True (a final
        stopped at its target), training ends there, the model as trained so far."""

        def __init__(self, report: ReportCallback, val: Digits | None, around_checks: list[Any],
                     initialised: tuple[float, float]) -> None:
            super().__init__()
            self.report = report
            self.init_cpu, self.init_wall = initialised  # the fit's initialisation, before the data
            self.around_checks = around_checks  # callbacks of each check's evaluation
            self.val = None if val is None else (as_pixels(val.images), val.labels)
            self.checks = getattr(report, "checks_per_epoch", 1) if val is not None else 1
            self.val_cpu = self.val_wall = 0.0
            self.started = (0.0, 0.0)
            self.epoch, self.checked = 0, 0
            self.stopped = False

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch, self.checked = epoch, 0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            steps = self.params.get("steps") if self.checks > 1 else None
            if not steps:
                return
            due = min(self.checks - 1, (batch + 1) * self.checks // steps)  # checks passed so far
            if due <= self.checked:
                return
            self.checked = due
            cpu, wall = time.process_time(), time.perf_counter()
            x, y = self.val
            accuracy = self.model.evaluate(x, y, batch_size=PREDICT_CHUNK, verbose=0, return_dict=True,
                                           callbacks=self.around_checks)
            self.val_cpu += time.process_time() - cpu
            self.val_wall += time.perf_counter() - wall
            if self.report(self.epoch + due / self.checks, {"val_accuracy": float(accuracy["accuracy"])},
                           **self.untimed()):
                self.model.stop_training = self.stopped = True  # Keras ends the fit after this batch

        def on_test_begin(self, logs: dict | None = None) -> None:
            self.started = (time.process_time(), time.perf_counter())

        def on_test_end(self, logs: dict | None = None) -> None:
            self.val_cpu += time.process_time() - self.started[0]
            self.val_wall += time.perf_counter() - self.started[1]

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.stopped:  # stopped within this epoch: it was not trained to its end
                return
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            if self.report(epoch + 1, metrics, **self.untimed()):
                self.model.stop_training = True

        def untimed(self) -> dict[str, float]:
            """The keywords of each report: the time spent so far on what is not training."""
            return {"val_cpu_s": self.val_cpu, "val_wall_s": self.val_wall,
                    "init_cpu_s": self.init_cpu, "init_wall_s": self.init_wall}

    return EpochCallback


def epoch_callback(report: ReportCallback, val: Digits | None, around_checks: list[Any] | None = None,
                   initialised: tuple[float, float] = (0.0, 0.0)) -> Any:
    """A Keras callback passing each epoch on to ``report`` (see ``EpochCallback``); the checks within
    an epoch evaluate with ``around_checks`` (Keras callbacks, such as the swap to averaged weights);
    ``initialised`` is the CPU- and wall-seconds the fit spent before it touched the training data,
    passed on with every report."""
    return _epoch_callback_class()(report, val, around_checks or [], initialised)


# Each variant starts from defaults chosen on validation only (`benchmarks/mnist_lenet.py --choose`,
# docs/models.md "Each variant's own defaults"): both train the class's network with its first convolution
# unpadded (a third fewer multiply-adds), light augmentation (0.05: shifts of up to 1.4 pixels,
# rotations of up to 4.5 degrees) and Adam 2e-3 with dropout 0.2, and each a moving average of the
# weights (validation scores it and the fit leaves it) of its own: about the last 20 steps for ReLU
# (0.95), the last 50 for tanh (0.98); and each a narrower layer: ReLU 256 dense units (2.09 M
# multiply-adds an image), tanh 40 filters in its second convolution (1.89 M; both against 2.29 M).
VARIANT_DEFAULTS = {"padding": "valid", "augment": 0.05, "learning_rate": 2e-3, "dropout": 0.2}
register("lenet-relu", LeNet, defaults={**VARIANT_DEFAULTS, "ema_momentum": 0.95, "dense_units": 256},
         activation="relu")
register("lenet-tanh", LeNet, defaults={**VARIANT_DEFAULTS, "ema_momentum": 0.98, "filters2": 40},
         activation="tanh")
# The CPU speedrun (`run --preset speedrun`): the recipe `benchmarks/mnist_lenet.py --choose
# speedrun` chose on validation (docs/presets.md "Speedrun"): two epochs of a smaller net (12/24 filters, the
# first convolution unpadded, 256 units, no dropout), batch 128, a one-cycle schedule peaking at
# Adam 1e-2 with lower betas (0.7, 0.9).
register("lenet-speedrun", LeNet, defaults={
    "filters1": 12, "filters2": 24, "dense_units": 256, "dropout": 0.0, "padding": "valid",
    "learning_rate": 1e-2, "batch_size": 128, "beta_1": 0.7, "beta_2": 0.9, "lr_schedule": "one-cycle",
    "epochs": 2}, activation="relu")
