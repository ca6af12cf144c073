"""The training loop: learning, exact resume, atomic checkpoints, schedules, errors, seeds.

Every run is tiny (32x32 images, a handful of them, a VGG of widths 4-8) so the whole file
takes seconds on a CPU. Oracles: the loss of an all-zero score map is log(num_classes), the
poly schedule is its formula, evaluation is a ConfusionMatrix filled by hand, and a resumed
run is compared with an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from fcn_course.data import ShapesSegmentation
from fcn_course.metrics import ConfusionMatrix, boundary_accuracy
from fcn_course.models import (
    MODEL_BUILDERS,
    build_model,
    convolutionalize,
    course_vgg,
    model_from_spec,
    model_spec,
)
from fcn_course.train import (
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    make_optimizer,
    poly_schedule,
    save_checkpoint,
)

SMALL_WIDTHS = (4, 4, 8, 8, 8)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run on one thread: the models are tiny, and on a busy machine two threads spend more
    time waiting for each other than computing. The thread test sets its own counts."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _classifier(seed: int = 0, dropout: float = 0.5) -> nn.Module:
    torch.manual_seed(seed)
    return course_vgg(widths=SMALL_WIDTHS, fc_width=16, dropout=dropout)


def _model(name: str = "fcn8s", seed: int = 0, dropout: float = 0.5) -> nn.Module:
    """A tiny FCN; the same seed gives the same initial weights."""
    return build_model(name, num_classes=7, backbone=_classifier(seed, dropout))


def _data(split: str = "train", n: int = 6) -> ShapesSegmentation:
    return ShapesSegmentation(split, num_images=n, image_size=32, size_range=(8.0, 24.0))


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_params(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"parameters differ: {different[:5]}"


def _without_seconds(history: dict[str, list[float]]) -> dict[str, list[float]]:
    # Wall time is the one entry no two runs share.
    return {k: v for k, v in history.items() if k != "seconds"}


class _Interrupting(Dataset):
    """A data set that raises KeyboardInterrupt at its ``after``-th item, like Ctrl-C."""

    def __init__(self, base: Dataset, after: int) -> None:
        self.base, self.after, self.reads = base, after, 0
        self.num_classes = base.num_classes

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        self.reads += 1
        if self.reads == self.after:
            raise KeyboardInterrupt
        return self.base[index]


# ----------------------------------------------------------------------------- learning


def test_initial_loss_is_log_num_classes_and_the_model_fits_four_images() -> None:
    images, masks = (torch.stack(t) for t in zip(*(_data(n=4)[i] for i in range(4)),
                                                    strict=True))
    model = _model(dropout=0.0).eval()
    with torch.no_grad():
        # score_fr and the skip scores start at zero: every class is equally likely.
        start = F.cross_entropy(model(images), masks, ignore_index=255).item()
    assert start == pytest.approx(math.log(7), abs=1e-6)

    config = TrainConfig(epochs=30, batch_size=4, optimizer="adam", lr=1e-2, weight_decay=0.0)
    result = fit(model, _data(n=4), None, config, progress=False)
    model.eval()
    with torch.no_grad():
        logits = model(images)
    end = F.cross_entropy(logits, masks, ignore_index=255).item()
    assert end < 0.5 * start
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    valid = masks != 255
    majority = torch.bincount(masks[valid]).max().item() / valid.sum().item()
    accuracy = (logits.argmax(1) == masks)[valid].float().mean().item()
    assert accuracy > majority + 0.1


# ----------------------------------------------------------------------------- resume


def test_resume_after_ctrl_c_ends_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    train, val = _data(n=6), _data("val", n=2)
    # SGD with momentum and weight decay, dropout on, poly schedule: state in every corner.
    config = TrainConfig(epochs=3, batch_size=2, lr=0.05)

    straight = _model()
    expected = fit(straight, train, val, config, progress=False)

    # 6 items per epoch: the 9th read is the second batch of epoch 2.
    interrupted = _Interrupting(train, after=9)
    with pytest.raises(KeyboardInterrupt):
        fit(_model(), interrupted, val, config, out_dir=tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1

    torch.manual_seed(1234)  # the resumed process starts from unrelated random state
    resumed = _model(seed=99)  # and other initial weights: the checkpoint must replace them
    result = fit(resumed, train, val, config, out_dir=tmp_path, resume=True, progress=False)

    assert result.epochs_run == 2
    _assert_same_params(_params(straight), _params(resumed))
    assert _without_seconds(result.history) == _without_seconds(expected.history)
    assert len(result.history["seconds"]) == 3
    assert result.metrics["mean_iou"] == expected.metrics["mean_iou"]


def test_resuming_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=3)
    first = fit(_model(), _data(), _data("val", 2), config, out_dir=tmp_path, progress=False)
    again = fit(_model(seed=5), _data(), _data("val", 2), config, out_dir=tmp_path,
                resume=True, progress=False)
    assert again.epochs_run == 0 and again.history == first.history
    assert again.metrics["mean_iou"] == first.metrics["mean_iou"]


def test_resume_with_another_config_names_the_changed_keys(tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=3, lr=0.01)
    spec = model_spec("fcn8s", num_classes=7, backbone=_classifier())
    fit(_model(), _data(), None, config, out_dir=tmp_path, model_spec=spec, progress=False)
    changed = TrainConfig(epochs=1, batch_size=2, lr=0.02)
    with pytest.raises(ValueError, match=r"batch_size \(3 -> 2\), lr \(0.01 -> 0.02\)"):
        fit(_model(), _data(), None, changed, out_dir=tmp_path, resume=True,
            model_spec=spec, progress=False)
    other = model_spec("fcn32s", num_classes=7, backbone=_classifier())
    with pytest.raises(ValueError, match=r"model_spec.name \('fcn8s' -> 'fcn32s'\)"):
        fit(_model(), _data(), None, config, out_dir=tmp_path, resume=True,
            model_spec=other, progress=False)
    with pytest.raises(ValueError, match="out_dir"):
        fit(_model(), _data(), None, config, resume=True, progress=False)


# ----------------------------------------------------------------------------- checkpoints


def test_a_crash_while_saving_leaves_the_previous_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    weights = {"w": torch.arange(6.0)}
    save_checkpoint(path, {"model_state": weights, "epoch": 1})
    before = path.read_bytes()

    def crash(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"PK\x03\x04 half a zip archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"model_state": {"w": torch.zeros(6)}, "epoch": 2})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model_state"]["w"], weights["w"])


def test_a_crash_while_fit_saves_keeps_the_last_finished_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save, calls = torch.save, []

    def save_once_then_crash(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"\x80\x02partial")
            raise OSError("disk full")
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_once_then_crash)
    with pytest.raises(OSError, match="disk full"):
        fit(_model(), _data(), None, TrainConfig(epochs=2, batch_size=3), out_dir=tmp_path,
            progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


_RAN: list[str] = []


def _record(message: str) -> None:
    _RAN.append(message)


class _Payload:
    """Unpickling this calls _record: what a malicious checkpoint would do with os.system."""

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return _record, ("code ran",)


def test_load_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model_state": {}, "extra": _Payload()}, path)
    _RAN.clear()
    with pytest.raises(ValueError, match="refused because unpickling them can run arbitrary"):
        load_checkpoint(path)
    assert _RAN == []
    with pytest.raises(pickle.UnpicklingError):  # the refusal comes from weights_only=True
        torch.load(path, weights_only=True)


def test_load_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "runs" / "last.pt"
    with pytest.raises(FileNotFoundError, match=r"existing checkpoint file.*runs/last\.pt"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"'.*garbage\.pt' is not a readable checkpoint \(its"):
        load_checkpoint(garbage)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(2)}, plain)
    with pytest.raises(ValueError, match="holds no 'model_state'"):
        load_checkpoint(plain)


def test_checkpoint_rebuilds_its_model_from_the_spec(tmp_path: Path) -> None:
    model = _model("fcn16s")
    spec = model_spec("fcn16s", num_classes=7, backbone=_classifier())
    fit(model, _data(), None, TrainConfig(epochs=1, batch_size=3), out_dir=tmp_path,
        model_spec=spec, metadata={"image_size": 32}, progress=False)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["metadata"] == {"image_size": 32} and state["num_classes"] == 7
    rebuilt = model_from_spec(state["model_spec"])
    rebuilt.load_state_dict(state["model_state"])
    x = _data("val", 1)[0][0].unsqueeze(0)
    assert torch.equal(rebuilt.eval()(x), model.eval()(x))


def test_fit_refuses_a_spec_a_checkpoint_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"model_spec.*plain data"):
        fit(_model(), _data(), None, TrainConfig(epochs=1), out_dir=tmp_path,
            model_spec={"backbone": _classifier()}, progress=False)


# ----------------------------------------------------------------------------- model specs


def test_build_model_lists_the_valid_names_and_keywords() -> None:
    assert {"fcn32s", "fcn16s", "fcn8s"} <= set(MODEL_BUILDERS)
    with pytest.raises(ValueError, match="'fcn32s', 'fcn16s', 'fcn8s'"):
        build_model("fcn4s")
    with pytest.raises(TypeError, match=r"keywords of fcn8s\(\): num_classes, backbone"):
        build_model("fcn8s", num_class=7)


def test_a_pretrained_backbone_is_recorded_by_architecture_and_reloads() -> None:
    classifier = _classifier(seed=3)
    model = build_model("fcn8s", num_classes=5, backbone=classifier, skip_scaling=True)
    spec = model_spec("fcn8s", num_classes=5, backbone=classifier, skip_scaling=True)
    assert json.loads(json.dumps(spec)) == spec  # plain data only
    assert spec["kwargs"]["backbone"]["cfg"] == [4, 4, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M",
                                                 8, 8, "M"]
    rebuilt = model_from_spec(spec)
    assert not torch.equal(rebuilt.backbone.features.conv1_1.weight,
                           model.backbone.features.conv1_1.weight)
    assert rebuilt.load_state_dict(model.state_dict()).missing_keys == []
    x = torch.rand(2, 3, 40, 24)
    assert torch.equal(rebuilt.eval()(x), model.eval()(x))
    # A convolutionalised classifier is described the same way.
    assert model_spec("fcn32s", backbone=convolutionalize(classifier))["kwargs"] == {
        "backbone": {**spec["kwargs"]["backbone"]}
    }
    # Pretrained-weight sources are not architecture: the checkpoint carries the weights.
    assert "weights_backbone" not in model_spec("fcn32s", weights_backbone=None)["kwargs"]
    with pytest.raises(TypeError, match=r"num_classes.*plain data"):
        model_spec("fcn32s", num_classes=torch.tensor(7))


# ----------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(("total", "power"), [(10, 0.9), (7, 1.0), (3, 2.0)])
def test_poly_schedule_is_the_formula(total: int, power: float) -> None:
    factor = poly_schedule(total, power)
    for step in range(total + 3):
        assert factor(step) == pytest.approx(max(0.0, 1 - step / total) ** power, abs=1e-15)
    assert factor(0) == 1.0 and factor(total) == 0.0


def test_fit_follows_the_poly_schedule() -> None:
    config = TrainConfig(epochs=3, batch_size=4, lr=0.02, poly_power=0.9)
    result = fit(_model(), _data(n=6), None, config, progress=False)
    steps_per_epoch, total = 2, 6  # ceil(6 / 4) batches per epoch
    expected = [0.02 * (1 - e * steps_per_epoch / total) ** 0.9 for e in (1, 2, 3)]
    assert result.history["lr"] == pytest.approx(expected, abs=1e-12)


def test_poly_schedule_rejects_no_steps() -> None:
    with pytest.raises(ValueError, match=r"total_steps.*positive int"):
        poly_schedule(0)


# ----------------------------------------------------------------------------- optimizer


def test_make_optimizer_groups_biases_and_scales_the_backbone() -> None:
    model = _model("fcn32s")
    config = TrainConfig(lr=0.1, weight_decay=1e-3, backbone_lr_scale=0.25)
    optimizer = make_optimizer(model, config)
    assert isinstance(optimizer, torch.optim.SGD)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert len(group_of) == sum(len(g["params"]) for g in optimizer.param_groups)
    assert set(group_of) == {id(p) for p in trainable.values()}  # frozen upscore left out
    assert not model.upscore.weight.requires_grad
    assert any(".bn" in name for name in trainable)
    for name, param in trainable.items():
        group = group_of[id(param)]
        # Biases and batch-norm scales are not decayed; convolution weights are.
        no_decay = name.endswith(".bias") or ".bn" in name
        assert group["weight_decay"] == (0.0 if no_decay else 1e-3), name
        assert group["lr"] == pytest.approx(0.025 if name.startswith("backbone.") else 0.1)
    assert optimizer.param_groups[0]["momentum"] == 0.9
    adam = make_optimizer(model, TrainConfig(optimizer="adam", lr=1e-3))
    assert isinstance(adam, torch.optim.Adam)


def test_make_optimizer_needs_trainable_parameters() -> None:
    model = _model("fcn32s").requires_grad_(False)
    with pytest.raises(ValueError, match="trainable parameters"):
        make_optimizer(model, TrainConfig())


# ----------------------------------------------------------------------------- evaluation


def test_evaluate_equals_a_confusion_matrix_filled_by_hand() -> None:
    model = _model("fcn32s").train()
    with torch.no_grad():  # non-zero scores, so predictions vary over the image
        model.score_fr.weight.normal_(0, 0.5)
        model.score_fr.bias.normal_(0, 0.5)
    data = _data("val", n=5)
    scores = evaluate(model, data, batch_size=3, boundary_widths=(2, 4))
    assert model.training  # restored

    matrix = ConfusionMatrix(7)
    preds, masks = [], []
    model.eval()
    with torch.no_grad():
        for i in range(len(data)):
            image, mask = data[i]
            pred = model(image.unsqueeze(0)).argmax(1)
            matrix.update(pred, mask.unsqueeze(0))
            preds.append(pred)
            masks.append(mask.unsqueeze(0))
    expected = matrix.compute()
    assert scores["confusion_matrix"] == matrix.matrix.tolist()
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-12)
    assert scores["iou"] == pytest.approx(expected["iou"], abs=1e-12, nan_ok=True)
    pred, target = torch.cat(preds), torch.cat(masks)
    for width in (2, 4):
        assert scores["boundary_accuracy"][width] == pytest.approx(
            boundary_accuracy(pred, target, width=width))


def test_evaluate_names_a_class_count_mismatch() -> None:
    model = build_model("fcn32s", num_classes=3, backbone=_classifier())
    with pytest.raises(ValueError, match=r"logits \(N, 7, H, W\).*\(1, 3, 32, 32\)"):
        evaluate(model, _data("val", 1))


# ----------------------------------------------------------------------------- errors


def test_a_diverging_sum_loss_raises_with_the_hint() -> None:
    config = TrainConfig(epochs=5, batch_size=2, lr=1.0, loss_reduction="sum")
    with pytest.raises(FloatingPointError,
                       match=r"(?s)diverged.*loss_reduction='sum'.*2048 pixels.*smaller"):
        fit(_model(), _data(n=4), None, config, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "'epochs' expected a positive int, got 0"),
        ({"batch_size": "16"}, TypeError, "'batch_size' expected an int"),
        ({"optimizer": "rmsprop"}, ValueError, "'optimizer' expected one of 'sgd', 'adam'"),
        ({"schedule": "step"}, ValueError, "'schedule' expected one of 'poly', 'constant'"),
        ({"loss_reduction": "none"}, ValueError, "'loss_reduction' expected one of"),
        ({"lr": 0}, ValueError, "'lr' expected a positive learning rate"),
        ({"lr": -0.1}, ValueError, "'lr' expected a finite non-negative number"),
        ({"lr": math.nan}, ValueError, "'lr' expected a finite non-negative number"),
        ({"momentum": 1.0}, ValueError, r"'momentum' expected a number in \[0, 1\)"),
        ({"weight_decay": True}, ValueError, "'weight_decay' expected a finite"),
        ({"class_weights": [1.0, -1.0]}, ValueError, "'class_weights' expected None or a list"),
        ({"seed": 1.5}, TypeError, "'seed' expected an int"),
        ({"ignore_index": None}, TypeError, "'ignore_index' expected an int"),
    ],
)
def test_train_config_rejects_bad_values(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_train_config_round_trips_and_rejects_unknown_keys() -> None:
    config = TrainConfig(lr=1, class_weights=(1, 2, 3, 4, 5, 6, 7))
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_fit_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match=r"class_weights' expected 7 weights.*got 2 weights"):
        fit(_model(), _data(), None, TrainConfig(class_weights=[1.0, 2.0]), progress=False)
    with pytest.raises(TypeError, match="'config' expected a TrainConfig"):
        fit(_model(), _data(), None, {"epochs": 1}, progress=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"'model' expected an nn\.Module"):
        fit("fcn8s", _data(), None, progress=False)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- determinism


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    config = TrainConfig(epochs=2, batch_size=3, seed=7)
    runs = []
    for _ in range(2):
        model = _model()
        result = fit(model, _data(), _data("val", 2), config, progress=False)
        runs.append((_params(model), _without_seconds(result.history)))
    _assert_same_params(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = _model()
    fit(other, _data(), None, TrainConfig(epochs=2, batch_size=3, seed=8), progress=False)
    assert not torch.equal(_params(other)["score_fr.weight"], runs[0][0]["score_fr.weight"])


def test_a_progress_bar_does_not_change_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)  # bars are off under CI
    config = TrainConfig(epochs=2, batch_size=2)
    runs = []
    for progress in (False, True):
        model = _model()
        result = fit(model, _data(), _data("val", 2), config, progress=progress)
        runs.append((_params(model), _without_seconds(result.history)))
    assert "epoch 2/2" in capsys.readouterr().err  # the bar was drawn
    _assert_same_params(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_thread_count_changes_float_bits_not_the_rounded_metrics(optimizer: str) -> None:
    """With 1 or 2 threads, sums run in another order, so training differs in the last
    float bits; the validation metrics still agree to 4 decimals. SGD keeps parameters within
    1e-5. Adam does not for one kind: a convolution bias followed by batch norm has a true
    gradient of zero (the norm subtracts it), so its computed gradient is rounding noise,
    and Adam, which divides by the gradient's size, turns noise of either sign into steps of
    the full learning rate. Those biases (and the running means that follow them) differ,
    the function the network computes does not."""
    config = TrainConfig(epochs=2, batch_size=3, optimizer=optimizer,
                         lr=3e-3 if optimizer == "adam" else 0.05)
    threads = torch.get_num_threads()
    runs = {}
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            model = _model()
            result = fit(model, _data(), _data("val", 2), config, progress=False)
            runs[count] = (_params(model), result.metrics)
    finally:
        torch.set_num_threads(threads)
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert round(runs[1][1][key], 4) == round(runs[2][1][key], 4), key
    one, two = runs[1][0], runs[2][0]
    apart = [k for k in one if not torch.allclose(one[k].double(), two[k].double(), atol=1e-5)]
    if optimizer == "sgd":
        assert apart == []
    else:
        before_norm = re.compile(r"backbone\.features\.(conv\d_\d\.bias|bn\d_\d\.running_mean)")
        assert all(before_norm.fullmatch(k) for k in apart), apart


def test_evaluating_with_one_or_two_threads_gives_the_same_rounded_metrics() -> None:
    model = _model("fcn8s")
    fit(model, _data(), None, TrainConfig(epochs=1, batch_size=3), progress=False)
    threads = torch.get_num_threads()
    scores = {}
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            result = evaluate(model, _data("val", 3))
            scores[count] = [round(result[k], 4) for k in
                             ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou")]
    finally:
        torch.set_num_threads(threads)
    assert scores[1] == scores[2]
