"""``fcn-course train``, ``evaluate`` and ``predict``, run in-process on tiny settings.

Runs use 32x32 images, 8 training and 4 validation images and one or two epochs, so each
takes well under a second of compute. Results are checked against the package called
directly (the checkpoint's own model and data), not against the command's own output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import fcn_course.train
from fcn_course.cli import main
from fcn_course.data import ShapesSegmentation
from fcn_course.models import build_model, course_vgg, model_from_spec, model_spec
from fcn_course.train import TrainConfig, load_checkpoint, save_checkpoint
from fcn_course.viz import colorize, overlay

TINY = ["--image-size", "32", "--train-images", "8", "--val-images", "4", "--batch-size", "4",
        "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One thread: the runs are tiny, and two threads on a busy machine mostly wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(out: Path, *extra: str, epochs: int = 1, model: str = "fcn32s") -> list[str]:
    return ["train", "--model", model, "--epochs", str(epochs), *TINY, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished FCN-32s run that the evaluate and predict tests read."""
    out = tmp_path_factory.mktemp("run") / "fcn32s"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_train(out, "--json")) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _image_file(path: Path, height: int = 40, width: int = 48) -> torch.Tensor:
    """Save a shapes image of ``height x width`` as PNG; return it as the float tensor."""
    image = ShapesSegmentation("test", num_images=1, image_size=max(height, width))[0][0]
    image = image[:, :height, :width]
    pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255


# ----------------------------------------------------------------------------- train


def test_train_writes_checkpoint_history_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(_train(out, "--json", epochs=2)) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert {"model", "checkpoint", "history_file", "epochs_run", "seconds", "metrics",
            "history"} <= set(summary)
    assert summary["epochs_run"] == 2 and summary["model"] == "fcn32s"
    assert {"pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "boundary_accuracy",
            "per_class", "confusion_matrix"} <= set(summary["metrics"])
    assert list(summary["metrics"]["per_class"])[:2] == ["background", "disc"]
    assert "epoch 2/2  loss" in captured.err  # epoch lines leave stdout to the JSON

    assert sorted(p.name for p in out.iterdir()) == ["history.json", "last.pt"]
    history = json.loads((out / "history.json").read_text())
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and history["epoch"] == [1, 2]
    assert history["train_loss"] == state["history"]["train_loss"]
    assert summary["metrics"]["mean_iou"] == pytest.approx(history["val_mean_iou"][-1])
    assert state["model_spec"]["name"] == "fcn32s"
    assert state["metadata"]["image_size"] == 32


def test_train_prints_a_line_per_epoch_and_the_final_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train(tmp_path / "run", "--val-images", "2")) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1  loss " in out and "val mean IU " in out
    assert "final (val, 2 images): pixel acc " in out and "f.w. IU" in out
    assert "fcn-course evaluate" in out


def test_train_refuses_to_overwrite_a_run(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (run_dir / "last.pt").read_bytes()
    assert main(_train(run_dir)) == 2
    assert "already holds a run (epoch 1 finished); pass --resume" in capsys.readouterr().err
    assert (run_dir / "last.pt").read_bytes() == before


def test_ctrl_c_keeps_the_finished_epoch_and_resume_matches_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(_train(straight, epochs=2)) == 0

    real_loss, calls = fcn_course.train.pixel_cross_entropy, []

    def ctrl_c_in_epoch_two(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:  # 2 batches per epoch: the first batch of epoch 2
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(fcn_course.train, "pixel_cross_entropy", ctrl_c_in_epoch_two)
    capsys.readouterr()
    assert main(_train(stopped, epochs=2)) == 130
    err = capsys.readouterr().err
    assert f"epoch 1 of 2 is the last finished one, saved in {stopped / 'last.pt'}" in err
    assert "--resume" in err
    assert load_checkpoint(stopped / "last.pt")["epoch"] == 1
    assert json.loads((stopped / "history.json").read_text())["epoch"] == [1]
    monkeypatch.undo()

    assert main(_train(stopped, "--resume", "--json", epochs=2)) == 0
    assert json.loads(capsys.readouterr().out)["epochs_run"] == 1
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(stopped / "last.pt")
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert json.loads((stopped / "history.json").read_text())["epoch"] == [1, 2]


def test_resume_with_other_settings_names_them(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _train(run_dir, "--resume")
    args[args.index("--image-size") + 1] = "48"
    assert main([*args, "--lr", "0.02"]) == 2
    err = capsys.readouterr().err
    assert "lr (0.01 -> 0.02)" in err and "metadata.image_size (32 -> 48)" in err


def test_resume_without_a_checkpoint_starts_a_new_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train(tmp_path / "new", "--resume", "--val-images", "0")) == 0
    assert "no checkpoint in" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "new" / "last.pt")["epoch"] == 1


def test_train_from_a_pretrained_classifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(3)
    classifier = course_vgg(widths=(4, 4, 8, 8, 8), fc_width=16)
    save_checkpoint(tmp_path / "classifier.pt", {"model_state": classifier.state_dict()})
    out = tmp_path / "run"
    # A learning rate of ~0 leaves the weights where they started: the classifier's.
    assert main(_train(out, "--backbone-checkpoint", str(tmp_path / "classifier.pt"),
                       "--lr", "1e-12", "--val-images", "0")) == 0
    state = load_checkpoint(out / "last.pt")
    assert state["model_spec"]["kwargs"]["backbone"]["fc_width"] == 16
    torch.testing.assert_close(state["model_state"]["backbone.features.conv1_1.weight"],
                               classifier.features.conv1_1.weight.detach())
    model = model_from_spec(state["model_spec"])
    model.load_state_dict(state["model_state"])  # the spec rebuilds the same shapes


def test_a_backbone_checkpoint_that_does_not_fit_is_named(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.pt"
    save_checkpoint(odd, {"model_state": {"linear.weight": torch.zeros(2, 2)}})
    assert main(_train(tmp_path / "a", "--backbone-checkpoint", str(odd))) == 2
    assert "expected the state_dict of a course classifier" in capsys.readouterr().err
    segmentation = str(run_dir / "last.pt")
    assert main(_train(tmp_path / "b", "--backbone-checkpoint", segmentation)) == 2
    assert "holds a segmentation model (fcn32s), not a classifier" in capsys.readouterr().err
    assert main(_train(tmp_path / "c", "--backbone-checkpoint", str(tmp_path / "no.pt"))) == 2
    assert "expected an existing checkpoint file" in capsys.readouterr().err


def test_bad_arguments_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs: expected a positive int, got '0'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_prints_the_metrics_and_the_class_table(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(run_dir / "last.pt")]) == 0
    out = capsys.readouterr().out
    for label in ("pixel acc", "mean acc", "mean IU", "f.w. IU", "boundary acc (3 px)"):
        assert label in out
    assert "class " in out and "IoU" in out
    for name in ("background", "disc", "square", "triangle", "ring", "cross", "ell"):
        assert f"\n{name} " in out
    assert "(4 images of 32x32)" in out  # the run's validation settings by default


def test_evaluate_json_equals_the_metrics_of_training(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(run_dir / "last.pt"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"checkpoint", "model", "epoch", "split", "images", "image_size", "pixel_accuracy",
            "mean_accuracy", "mean_iou", "fw_iou", "boundary_accuracy", "per_class",
            "confusion_matrix"} <= set(scores)
    history = load_checkpoint(run_dir / "last.pt")["history"]
    assert scores["mean_iou"] == pytest.approx(history["val_mean_iou"][-1])
    assert scores["pixel_accuracy"] == pytest.approx(history["val_pixel_accuracy"][-1])
    matrix = np.array(scores["confusion_matrix"])
    assert matrix.shape == (7, 7)
    assert scores["pixel_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())


def test_evaluate_on_the_test_split(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run_dir / "last.pt"), "--split", "test", "--images", "2",
                 "--image-size", "40", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["split"] == "test" and scores["image_size"] == 40
    assert np.array(scores["confusion_matrix"]).sum() > 0


def test_evaluate_refuses_a_checkpoint_with_other_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs = {"num_classes": 3, "backbone": course_vgg(widths=(4, 4, 8, 8, 8), fc_width=16)}
    model = build_model("fcn32s", **kwargs)
    path = tmp_path / "three.pt"
    save_checkpoint(path, {"model_state": model.state_dict(), "epoch": 1, "num_classes": 3,
                           "model_spec": model_spec("fcn32s", **kwargs),
                           "config": TrainConfig().to_dict()})
    assert main(["evaluate", str(path), "--images", "1", "--image-size", "32"]) == 2
    err = capsys.readouterr().err
    assert "predicts 3 classes but ShapesSegmentation has 7 (background, disc" in err


def test_evaluate_errors_for_missing_or_specless_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path / "missing.pt")]) == 2
    assert "expected an existing checkpoint file" in capsys.readouterr().err
    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, {"model_state": {}})
    assert main(["evaluate", str(bare)]) == 2
    assert "has no model_spec" in capsys.readouterr().err


# ----------------------------------------------------------------------------- predict


def test_predict_writes_the_coloured_mask_and_overlay(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _image_file(tmp_path / "photo.png")  # 40 rows, 48 columns
    mask_path, overlay_path = tmp_path / "out" / "mask.png", tmp_path / "out" / "overlay.png"
    assert main(["predict", str(run_dir / "last.pt"), str(tmp_path / "photo.png"),
                 "--out-mask", str(mask_path), "--out-overlay", str(overlay_path)]) == 0
    assert "predicted:" in capsys.readouterr().out

    state = load_checkpoint(run_dir / "last.pt")
    model = model_from_spec(state["model_spec"])
    model.load_state_dict(state["model_state"])
    with torch.no_grad():
        labels = model.eval()(image.unsqueeze(0)).argmax(1)[0]
    mask = np.asarray(Image.open(mask_path))
    assert mask.shape == (40, 48, 3)
    np.testing.assert_array_equal(mask, colorize(labels).numpy())
    np.testing.assert_array_equal(np.asarray(Image.open(overlay_path).convert("RGB")),
                                  overlay(image, labels).numpy())


def test_predict_names_its_outputs_after_the_image(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _image_file(tmp_path / "scene.png", 32, 32)
    assert main(["predict", str(run_dir / "last.pt"), str(tmp_path / "scene.png")]) == 0
    assert (tmp_path / "scene_mask.png").is_file() and (tmp_path / "scene_overlay.png").is_file()


def test_predict_errors_name_the_file(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = str(run_dir / "last.pt")
    missing = tmp_path / "nowhere.png"
    assert main(["predict", checkpoint, str(missing)]) == 2
    assert f"image file {str(missing)!r} does not exist" in capsys.readouterr().err

    garbage = tmp_path / "x.png"
    garbage.write_bytes(b"\x89PNG but then nothing an image decoder can use")
    assert main(["predict", checkpoint, str(garbage)]) == 2
    assert f"cannot read {str(garbage)!r} as an image" in capsys.readouterr().err

    _image_file(tmp_path / "ok.png", 32, 32)
    assert main(["predict", str(tmp_path / "none.pt"), str(tmp_path / "ok.png")]) == 2
    assert "expected an existing checkpoint file" in capsys.readouterr().err
    assert not (tmp_path / "ok_mask.png").exists()


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_help_has_a_description_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: fcn-course {command}")
    assert f"example:\n  fcn-course {command} " in text
