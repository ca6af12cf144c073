"""The course benchmark: FCN-32s, -16s and -8s trained and compared on the synthetic data.

``fcn-course bench`` pre-trains the course classifier (or reuses one saved by an earlier
run), then trains each FCN variant from it with the same recipe and reports training time,
throughput, held-out mean IU and boundary accuracy: the measured version of the FCN paper's
table of FCN-32s, -16s and -8s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fcn_course._validation import check_choice, check_int
from fcn_course.data import ShapesClassification, ShapesSegmentation
from fcn_course.data.shapes import SHAPE_CLASSES
from fcn_course.models import (
    complexity,
    course_vgg,
    deeplab,
    fcn8s,
    fcn16s,
    fcn32s,
    segnet,
    unet,
)
from fcn_course.pretrain import fit_classifier, materialize
from fcn_course.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint

__all__ = ["BenchConfig", "format_table", "run_benchmark"]

BUILDERS = {"fcn32s": fcn32s, "fcn16s": fcn16s, "fcn8s": fcn8s, "unet": unet,
            "segnet": segnet, "deeplab": deeplab}
"""The models the benchmark can train. Every one but U-Net starts from the pre-trained course
classifier; U-Net, as in its paper, is trained from scratch (chapter 8 compares them)."""

FROM_SCRATCH = frozenset({"unet"})

AFTER_FCN = ("unet", "segnet", "deeplab")

RECIPE_VERSION = 4
"""Part of every saved model's settings: raise it when a change to the data set or the
training code makes models saved by earlier versions stale, so they are trained again."""


@dataclasses.dataclass
class BenchConfig:
    """Settings of one benchmark run (the defaults are the published benchmark)."""

    image_size: int = 128
    train_images: int = 1500
    test_images: int = 300
    epochs: int = 16
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    classifier_images: int = 4000
    classifier_epochs: int = 10
    boundary_width: int = 3
    models: tuple[str, ...] = ("fcn32s", "fcn16s", "fcn8s")
    seed: int = 0
    data_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        where = "BenchConfig()"
        for name in ("image_size", "train_images", "test_images", "epochs", "batch_size",
                     "classifier_images", "classifier_epochs", "boundary_width"):
            check_int(where, name, getattr(self, name), minimum=1)
        for model in self.models:
            check_choice(where, "models", model, tuple(BUILDERS))


def load_or_train_classifier(
    config: BenchConfig, out_dir: Path | None, device: str, progress: bool, log: Any
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The pre-trained course classifier: loaded from out_dir if an earlier run saved it."""
    path = out_dir / "classifier.pt" if out_dir is not None else None
    torch.manual_seed(config.seed)  # the initial weights, so that every run trains the same model
    model = course_vgg(num_classes=len(ShapesClassification("train", num_images=1).classes))
    if path is not None and path.is_file():
        state = load_checkpoint(path)
        if state.get("settings") == _classifier_settings(config):
            model.load_state_dict(state["model_state"])
            log(f"classifier: reused {path.name} (val accuracy {state['accuracy']:.3f})")
            return model, {"reused": True, "accuracy": state["accuracy"], "seconds": 0.0}
    train = materialize(ShapesClassification("train", num_images=config.classifier_images,
                                             seed=config.seed))
    val = materialize(ShapesClassification("val", num_images=500, seed=config.seed))
    result = fit_classifier(model, train, val, epochs=config.classifier_epochs,
                            seed=config.seed, device=device, progress=progress)
    model.cpu()
    log(f"classifier: val accuracy {result.accuracy:.3f} after {result.seconds:.0f} s")
    if path is not None:
        save_checkpoint(path, {"model_state": model.state_dict(), "accuracy": result.accuracy,
                               "settings": _classifier_settings(config)})
    return model, {"reused": False, "accuracy": result.accuracy, "seconds": result.seconds}


class LazyData:
    """The training set, rendered only when a model actually has to be trained."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._data: Any = None

    def get(self) -> Any:
        if self._data is None:
            self._data = self._make()
        return self._data


def model_settings(name: str, config: BenchConfig) -> dict[str, Any]:
    """Everything that determines a trained benchmark model (the key of its saved copy)."""
    settings = dataclasses.asdict(config)
    settings.pop("models")
    settings["data_options"] = {k: list(v) if isinstance(v, tuple) else v
                                for k, v in sorted(config.data_options.items())}
    return {"model": name, "version": RECIPE_VERSION, **settings}


def load_or_train_model(
    name: str, config: BenchConfig, classifier: torch.nn.Module, train: LazyData,
    out_dir: Path | None, device: str, progress: bool, retrain: bool,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Model ``name`` trained from the classifier: loaded from out_dir, or trained (and saved)."""
    num_classes = 1 + len(SHAPE_CLASSES)  # background and the shapes
    torch.manual_seed(config.seed)  # new layers' initial weights are seeded like the rest
    if name in FROM_SCRATCH:
        model = BUILDERS[name](num_classes=num_classes)
    else:
        model = BUILDERS[name](num_classes=num_classes, backbone=classifier)
    path = out_dir / f"{name}.pt" if out_dir is not None else None
    settings = model_settings(name, config)
    if path is not None and path.is_file() and not retrain:
        state = load_checkpoint(path)
        if state.get("settings") == settings:
            model.load_state_dict(state["model_state"])
            return model, {"reused": True, "seconds": state["seconds"],
                           "images_per_second": state["images_per_second"],
                           "history": state["history"]}
    train_config = TrainConfig(
        epochs=config.epochs, batch_size=config.batch_size, optimizer=config.optimizer,
        lr=config.lr, weight_decay=config.weight_decay, seed=config.seed,
        boundary_width=config.boundary_width,
    )
    result = fit(model, train.get(), None, train_config, device=device, progress=progress)
    model.cpu()
    info = {"reused": False, "seconds": result.seconds,
            "images_per_second": result.images_per_second, "history": result.history}
    if path is not None:
        save_checkpoint(path, {"model_state": model.state_dict(), "settings": settings,
                               "seconds": result.seconds,
                               "images_per_second": result.images_per_second,
                               "history": result.history})
    return model, info


def _classifier_settings(config: BenchConfig) -> dict[str, Any]:
    return {"images": config.classifier_images, "epochs": config.classifier_epochs,
            "seed": config.seed, "version": RECIPE_VERSION}


def run_benchmark(
    config: BenchConfig | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Any = print,
    retrain: bool = False,
) -> dict[str, Any]:
    """Run the benchmark; returns (and writes to ``out_dir/bench.json``) every measurement.

    With ``out_dir``, the classifier and every trained model are saved there
    (``classifier.pt``, ``fcn8s.pt``, ...) together with the settings that made them; a later
    run with the same settings loads them instead of training again (its report then quotes
    the training time and throughput measured when they were trained, and marks the row
    ``reused``). ``retrain=True`` trains every model again.
    """
    config = config or BenchConfig()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    classifier, classifier_info = load_or_train_classifier(config, out, device, progress, log)

    started = time.perf_counter()
    data_kwargs = {"image_size": config.image_size, "seed": config.seed, **config.data_options}
    train = LazyData(lambda: materialize(
        ShapesSegmentation("train", num_images=config.train_images, **data_kwargs)))
    test = materialize(ShapesSegmentation("test", num_images=config.test_images, **data_kwargs))
    render_seconds = time.perf_counter() - started
    log(f"data: {config.test_images} test images of {config.image_size}x{config.image_size} "
        f"rendered in {render_seconds:.1f} s")

    rows = []
    for name in config.models:
        model, trained = load_or_train_model(name, config, classifier, train, out, device, progress,
                                        retrain)
        scores = evaluate(model, test, batch_size=64, boundary_widths=(config.boundary_width,),
                          device=device)
        cost = complexity(model.cpu(), (config.image_size, config.image_size))
        row = {
            "model": name,
            "reused": trained["reused"],
            "train_seconds": trained["seconds"],
            "images_per_second": trained["images_per_second"],
            "mean_iou": scores["mean_iou"],
            "pixel_accuracy": scores["pixel_accuracy"],
            "mean_accuracy": scores["mean_accuracy"],
            "fw_iou": scores["fw_iou"],
            "boundary_accuracy": scores["boundary_accuracy"][config.boundary_width],
            "iou": scores["iou"],
            "history": trained["history"],
            "parameters": cost.parameters,
            "gflops": cost.flops / 1e9,
        }
        rows.append(row)
        log(f"{name}: mean IU {row['mean_iou']:.3f}, boundary accuracy "
            f"{row['boundary_accuracy']:.3f}, {row['train_seconds']:.0f} s, "
            f"{row['images_per_second']:.1f} images/s")

    report = {
        "version": RECIPE_VERSION,
        "config": dataclasses.asdict(config),
        "device": device,
        "machine": {"cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "classifier": classifier_info,
        "render_seconds": render_seconds,
        "classes": list(test.classes),
        "results": rows,
    }
    if out is not None:
        tmp = out / ".bench.json.tmp"
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, out / "bench.json")
    return report


def format_table(report: dict[str, Any]) -> str:
    """The benchmark as a Markdown table, one row per model."""
    lines = [
        "| model | mean IU | boundary acc. | pixel acc. | train time (s) | images/s | params "
        "| GFLOPs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['model']} | {row['mean_iou']:.3f} | {row['boundary_accuracy']:.3f} | "
            f"{row['pixel_accuracy']:.3f} | {row['train_seconds']:.0f} | "
            f"{row['images_per_second']:.1f} | {row['parameters']:,} | {row['gflops']:.2f} |"
        )
    return "\n".join(lines)


def parse_data_options(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` pairs (values as JSON, e.g. ``thin_width=[6,10]``) for the data set."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(
                f"--data-option expected key=value (e.g. thin_width=[6,10]), got {item!r}"
            )
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return options
