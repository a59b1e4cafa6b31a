"""Every registered model, built-in or plug-in, against the model contract on tiny real data."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from digitbench.models import registry
from digitbench.models.base import DigitModel, Digits, probabilities
from digitbench.models.baselines import pixels

# The registry as a user with one outside model sees it: the plug-in is checked like the built-ins.
sys.path.insert(0, str(Path(__file__).parents[1] / "plugins"))
registry.load_model_path("tinyplugin:NearestCentroid")

#: Parameters that make each kind of model quick on tiny data.
QUICK = {"epochs": 2, "max_iter": 200}


def quick_params(entry: registry.Entry) -> dict:
    return {k: v for k, v in QUICK.items() if k in entry.defaults()}


@pytest.fixture(scope="module")
def tiny(real_digits: Digits) -> tuple[Digits, Digits]:
    images, labels = real_digits
    return Digits(images[:600], labels[:600]), Digits(images[600:800], labels[600:800])


@pytest.mark.parametrize("name", registry.names())
def test_model_follows_the_contract(name: str, tiny: tuple[Digits, Digits]) -> None:
    entry = registry.get(name)
    train, test = tiny
    params = quick_params(entry)
    model = entry.create(**params)

    assert isinstance(model, DigitModel)
    assert model.family == entry.family and entry.family
    # Parameters are stored verbatim, defaults filled in, nothing fitted yet.
    assert model.get_params() == {**entry.defaults(), **params}
    assert not [k for k in vars(model) if k.endswith("_")], "__init__ must not fit anything"

    epochs_seen: list[int] = []
    fitted = model.fit(train, test, seed=0, report=lambda epoch, metrics, **_: epochs_seen.append(epoch))
    assert fitted is model

    predicted = model.predict(test.images)
    assert predicted.shape == (len(test),)
    assert np.issubdtype(predicted.dtype, np.integer)
    assert set(np.unique(predicted)) <= set(range(10))
    accuracy = float(np.mean(predicted == test.labels))
    assert accuracy > 0.5, f"{name}: {accuracy:.2%} on 200 held-out digits after tiny training"

    if "epochs" in entry.defaults():
        assert epochs_seen == list(range(1, params["epochs"] + 1))
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(test.images[:7])
        assert proba.shape == (7, 10)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(proba.argmax(axis=1), predicted[:7])
    model.warm_up(test.images[:3])  # must not fail on a fitted model


@pytest.mark.parametrize("name", registry.names())
def test_unknown_parameter_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="no parameter"):
        registry.get(name).create(no_such_parameter=1)


def test_baselines_are_deterministic_for_a_seed(tiny: tuple[Digits, Digits]) -> None:
    train, test = tiny
    for name in ("logreg", "linear-svm", "svm-rbf"):
        first = registry.get(name).create().fit(train, seed=3).predict(test.images)
        again = registry.get(name).create().fit(train, seed=3).predict(test.images)
        np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", [n for n in registry.names()
                                  if getattr(registry.get(n).cls, "seed_invariant", False)])
def test_a_seed_invariant_model_fits_the_same_model_whatever_the_seed(
        name: str, tiny: tuple[Digits, Digits]) -> None:
    """The finals train such a model once; that is only honest if other seeds change nothing."""
    train, test = tiny
    entry = registry.get(name)
    first = entry.create(**quick_params(entry)).fit(train, seed=0)
    other = entry.create(**quick_params(entry)).fit(train, seed=12345)
    np.testing.assert_array_equal(first.predict(test.images), other.predict(test.images))
    np.testing.assert_array_equal(probabilities(first, test.images), probabilities(other, test.images))
    if hasattr(first, "estimator_") and hasattr(first.estimator_, "decision_function"):
        x = pixels(test.images)
        np.testing.assert_array_equal(first.estimator_.decision_function(x),
                                      other.estimator_.decision_function(x))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_lenet_follows_the_seeds_architecture(batch_norm: bool) -> None:
    model = registry.get("lenet-tanh").create(filters1=6, filters2=16, dense_units=120,
                                              batch_norm=batch_norm)
    layers = [type(layer).__name__ for layer in model.build().layers]
    act = ["BatchNormalization", "Activation"] if batch_norm else ["Activation"]
    # without batch normalisation each convolution is pooled before its activation (the same function)
    conv = ["Conv2D", *act, "MaxPooling2D"] if batch_norm else ["Conv2D", "MaxPooling2D", "Activation"]
    assert layers == [*conv, *conv, "Flatten", "Dense", *act, "Dropout", "Dense"]
    keras_model = model.build()
    activations = [lay.get_config()["activation"] for lay in keras_model.layers
                   if type(lay).__name__ == "Activation"]
    assert activations == ["tanh"] * 3
    assert keras_model.layers[-1].get_config()["activation"] == "softmax"
    assert keras_model.output_shape == (None, 10)


def test_lenet_options_train_and_predict(tiny: tuple[Digits, Digits], tmp_path: Path) -> None:
    """Batch normalisation, a cosine learning-rate schedule and augmentation: the model trains,
    the augmentation stays out of the model that predicts, is saved and is exported. Batch 32: 114
    steps, enough for batch normalisation's moving statistics to leave their start (at the default
    batch 128, 30 steps, the accuracy sat near 0.5 whatever the network: 0.46-0.55)."""
    train, test = tiny
    model = registry.get("lenet-relu").create(epochs=6, batch_norm=True, lr_schedule="cosine",
                                              augment=0.1, batch_size=32).fit(train, seed=0)
    assert [type(lay).__name__ for lay in model.model_.layers][0] == "Conv2D"
    assert float(np.mean(model.predict(test.images) == test.labels)) > 0.5
    with pytest.raises(ValueError, match="lr_schedule"):
        registry.get("lenet-relu").create(epochs=1, lr_schedule="step").fit(train, seed=0)


class CheckingReport:
    """A ``report`` callback that asks for four validation checks an epoch, as a final timed to a
    target does, and keeps every call."""

    checks_per_epoch = 4

    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, float]]] = []
        self.val_cpu_s: list[float] = []
        self.init_cpu_s: list[float] = []

    def __call__(self, epoch: float, metrics: dict[str, float], *, val_cpu_s: float = 0.0,
                 val_wall_s: float = 0.0, init_cpu_s: float = 0.0, init_wall_s: float = 0.0) -> None:
        assert "val_cpu_s" not in metrics, "validation time is a keyword of its own, not a metric"
        self.calls.append((epoch, metrics))
        self.val_cpu_s.append(val_cpu_s)
        self.init_cpu_s.append(init_cpu_s)


def test_lenet_checks_validation_within_epochs_when_asked(tiny: tuple[Digits, Digits]) -> None:
    """600 images at batch 8: 75 steps an epoch, so checks after a quarter, half and three quarters
    (at the step boundaries of 16 steps an execution), each with the validation time so far."""
    train, val = tiny
    report = CheckingReport()
    registry.get("lenet-relu").create(epochs=2, batch_size=8, augment=0.0, filters1=4, filters2=8,
                                      dense_units=32).fit(train, val, seed=0, report=report)
    epochs = [e for e, _ in report.calls]
    within = [e for e in epochs if e != int(e)]
    assert [e for e in epochs if e == int(e)] == [1, 2]
    assert within == sorted(within) and set(within) <= {0.25, 0.5, 0.75, 1.25, 1.5, 1.75}
    assert {0.25, 1.25} <= set(within) and len(within) >= 4
    spent = report.val_cpu_s
    assert all(0 < a <= b for a, b in zip(spent, spent[1:], strict=False)), "validation time adds up"
    assert all(0 <= m["val_accuracy"] <= 1 for _, m in report.calls)
    plain: list[int] = []
    registry.get("lenet-relu").create(epochs=1, batch_size=8, augment=0.0, filters1=4, filters2=8,
                                      dense_units=32).fit(train, val, seed=0,
                                                          report=lambda e, m, **_: plain.append(e))
    assert plain == [1], "one report an epoch unless asked for more"


@pytest.mark.parametrize("name", [n for n in registry.names()
                                  if callable(getattr(registry.get(n).cls, "export_onnx", None))])
def test_an_onnx_export_predicts_what_the_model_predicts(name: str, tiny: tuple[Digits, Digits],
                                                         tmp_path: Path) -> None:
    """Every model that declares an ONNX export: the graph runs in ONNX Runtime and gives the same
    labels (the exact Nystroem pipeline has no converter: its export fails, which the finals
    record as a warning; see benchmark.execution.deployment)."""
    from digitbench.benchmark.execution.deployment import labels_of, onnx_latency, onnx_session

    entry = registry.get(name)
    train, test = tiny
    model = entry.create(**quick_params(entry)).fit(train, seed=0)
    predicted = model.predict(test.images)
    assert model.macs_per_image() > 0
    if name == "svm-nystroem":
        with pytest.warns(UserWarning, match="ONNX export failed"):
            assert onnx_latency(model, test.images, predicted) == ({}, None)
        return
    with warnings.catch_warnings():  # the converters' own deprecation notes
        warnings.simplefilter("ignore", FutureWarning)
        model.export_onnx(tmp_path / "m.onnx")
    session = onnx_session((tmp_path / "m.onnx").read_bytes())
    out = session.run(None, {session.get_inputs()[0].name: model.onnx_input(test.images)})[0]
    np.testing.assert_array_equal(labels_of(out), predicted)
    timed, graph = onnx_latency(model, test.images, predicted)
    again = onnx_session(graph)  # the graph that comes back with the result is the one timed
    np.testing.assert_array_equal(labels_of(again.run(None, {again.get_inputs()[0].name:
                                                             model.onnx_input(test.images)})[0]), predicted)
    assert timed["onnx_mismatches"] == 0 and 0 < timed["onnx_ms_b1_p50"] <= timed["onnx_ms_b1_p99"]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_pooling_before_the_activation_computes_the_same_function(activation: str) -> None:
    """CONV => POOL => ACT (what LeNet builds) against CONV => ACT => POOL with the same weights."""
    from digitbench.models.lenet import import_keras

    keras = import_keras()
    model = registry.get(f"lenet-{activation}").create(filters1=4, filters2=8, dense_units=16,
                                                         padding="same").build()
    layers = keras.layers
    reference = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(4, 5, padding="same"), layers.Activation(activation), layers.MaxPooling2D(2),
        layers.Conv2D(8, 5, padding="valid"), layers.Activation(activation), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(16), layers.Activation(activation), layers.Dropout(0.4),
        layers.Dense(10, activation="softmax")])
    reference.set_weights(model.get_weights())
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(model(x, training=False), reference(x, training=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("augment", [0.0, 0.05])
def test_the_trainer_takes_uint8_pixels_and_scales_them_as_predicting_does(augment: float) -> None:
    """``fit`` feeds the trainer the uint8 images themselves (no float copy of the training set);
    its first layer scales them to exactly the floats ``predict`` gives the LeNet."""
    from digitbench.models.lenet import as_input, as_pixels, import_keras

    keras = import_keras()
    lenet = registry.get("lenet-tanh").create(filters1=4, filters2=8, dense_units=16, augment=augment)
    model = lenet.build()
    trainer = lenet._trainer(keras, model)
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    pixels = as_pixels(images)
    assert pixels.dtype == np.uint8 and pixels.shape == (8, 28, 28, 1)
    assert np.shares_memory(pixels, images)
    assert as_input(images).max() == np.float32(1.0) and as_input(images).dtype == np.float32
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(trainer(pixels, training=False)),
                                  keras.ops.convert_to_numpy(model(as_input(images), training=False)))


def test_the_untimed_initialisation_traces_the_step_and_leaves_the_training_as_without_it(
        tiny: tuple[Digits, Digits], monkeypatch: pytest.MonkeyPatch) -> None:
    """Before it touches the training data, ``fit`` traces its training step on zeros (MLPerf's
    untimed model initialisation) and puts every variable back: the fit itself traces nothing more,
    every report carries the initialisation's time, and the trained network (moving average,
    dropout and random shifts all on) is the one a fit without that step trains."""
    import keras

    from digitbench.models.lenet import LeNet

    train, val = tiny  # 600 images at batch 32: 18 whole batches and a partial one of 24
    params = {"epochs": 2, "batch_size": 32, "filters1": 4, "filters2": 8, "dense_units": 16,
              "augment": 0.05, "dropout": 0.2, "ema_momentum": 0.9}
    traced: list[str] = []
    step = keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step",
                        lambda self, data: (traced.append("step"), step(self, data))[1])
    initialise = LeNet._trace_training_step
    monkeypatch.setattr(LeNet, "_trace_training_step",
                        lambda self, trainer, n: (initialise(self, trainer, n), traced.append("initialised")))
    report = CheckingReport()
    warmed = registry.get("lenet-tanh").create(**params).fit(train, val, seed=3, report=report)
    assert traced.index("initialised") == len(traced) - 1, f"the fit traced again after the warm-up: {traced}"
    assert traced.count("step") >= 1
    assert report.init_cpu_s and len(set(report.init_cpu_s)) == 1 and report.init_cpu_s[0] > 0

    monkeypatch.setattr(LeNet, "_trace_training_step", lambda self, trainer, n: None)
    plain = registry.get("lenet-tanh").create(**params).fit(train, val, seed=3, report=CheckingReport())
    for ours, theirs in zip(warmed.model_.get_weights(), plain.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_the_one_cycle_schedule_rises_then_falls_to_zero() -> None:
    from digitbench.models.lenet import LeNet, import_keras

    keras = import_keras()
    model = registry.get("lenet-speedrun").create(learning_rate=0.01, batch_size=100, epochs=1)
    schedule = model._rate(keras, n_train=1000)  # 10 steps: 3 rising, 7 falling
    at = [float(schedule(step)) for step in range(11)]
    assert at[0] == pytest.approx(0.01 / LeNet.ONE_CYCLE["start_divisor"])
    assert max(at) == pytest.approx(0.01) and at.index(max(at)) == 3
    assert at[-1] == pytest.approx(0.0, abs=1e-9) and at[3:] == sorted(at[3:], reverse=True)


def test_lenet_stops_training_when_report_says_so(tiny: tuple[Digits, Digits]) -> None:
    """A report that answers True (a final stopped at its target) ends the fit at that check."""
    train, val = tiny
    report = CheckingReport()
    stop_at = 0.5

    def stopping(epoch: float, metrics: dict[str, float], **kw: float) -> bool:
        report(epoch, metrics, **kw)
        return epoch >= stop_at

    stopping.checks_per_epoch = 4  # type: ignore[attr-defined]
    registry.get("lenet-relu").create(epochs=3, batch_size=8, filters1=4, filters2=8,
                                      dense_units=32).fit(train, val, seed=0, report=stopping)
    epochs = [e for e, _ in report.calls]
    assert epochs[-1] == stop_at, f"training went on after the stop: {epochs}"


@pytest.mark.parametrize(("padding", "side"), [("same", 28), ("valid", 24)])
def test_the_first_convolutions_padding_sets_its_size_and_the_multiply_adds(padding: str,
                                                                            side: int) -> None:
    """``padding`` "valid" (LeNet-5's, the speedrun's) shrinks the first feature maps to 24x24;
    ``macs_per_image`` counts what the built layers compute."""
    model = registry.get("lenet-relu").create(filters1=6, filters2=16, dense_units=120, padding=padding)
    keras_model = model.build()
    assert keras_model.layers[0].output.shape[1:3] == (side, side)
    counted = 0
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, rows, cols, filters = layer.output.shape
            k_rows, k_cols, channels, _ = layer.kernel.shape
            counted += rows * cols * filters * k_rows * k_cols * channels
        elif kind == "Dense":
            counted += int(np.prod(layer.kernel.shape))
    assert model.macs_per_image() == counted
    entry = registry.get("lenet-relu")
    with pytest.raises(ValueError, match="padding must be one of same, valid, got 'full'"):
        entry.cls.check_params({**entry.defaults(), "padding": "full"})


@pytest.mark.parametrize("stop_at", [0.5, 2])
def test_a_moving_average_is_what_validation_sees_and_what_the_fit_leaves(
        tiny: tuple[Digits, Digits], stop_at: float) -> None:
    """With ``ema_momentum``, each validation (a check within an epoch, Keras' at an epoch's end)
    scores the averaged weights, and the model the fit leaves (stopped there, or at its end) is
    that average: its accuracy is the last one reported. Raw weights score differently here."""
    train, val = tiny
    report = CheckingReport()

    def stopping(epoch: float, metrics: dict[str, float], **kw: float) -> bool:
        report(epoch, metrics, **kw)
        return epoch >= stop_at

    stopping.checks_per_epoch = 4  # type: ignore[attr-defined]
    small = {"epochs": 3, "batch_size": 8, "filters1": 4, "filters2": 8, "dense_units": 32}
    averaged = registry.get("lenet-relu").create(**small, ema_momentum=0.9)
    averaged.fit(train, val, seed=0, report=stopping)
    epoch, metrics = report.calls[-1]
    assert epoch == stop_at
    left = float((averaged.predict(val.images) == val.labels).mean())
    assert metrics["val_accuracy"] == pytest.approx(left, abs=1e-6)
    raw = registry.get("lenet-relu").create(**small).fit(train, val, seed=0, report=stopping)
    assert raw.model_.get_weights()[0].tolist() != averaged.model_.get_weights()[0].tolist()


def test_the_moving_average_spans_at_most_a_tenth_of_the_training() -> None:
    """``ema_momentum`` is kept where the training is long enough (full MNIST: 4,220 steps) and
    capped where it is short, so that a few hundred images are not left near their first weights."""
    model = registry.get("lenet-relu").create(ema_momentum=0.99)  # batch 128, 10 epochs
    assert model.params["ema_momentum"] == 0.99, "the parameter itself is stored verbatim"
    assert model._ema_momentum(54_000) == 0.99
    assert model._ema_momentum(1_280) == pytest.approx(0.9), "100 steps: the last 10 or so"
    assert model._ema_momentum(128) == 0.0, "10 steps: no average"
