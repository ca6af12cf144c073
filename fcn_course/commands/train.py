"""``fcn-course train``, ``evaluate`` and ``predict``: an FCN on the course's shapes, end to end.

Chapters "Training with a pixel-wise loss" and "Evaluation". Exit statuses: 0 done, 1 the
training diverged, 2 bad input (a missing file, a checkpoint that does not fit, ...), 130
interrupted with Ctrl-C (every finished epoch is kept in ``OUT/last.pt``).

``fcn-course train`` also runs under ``torchrun`` (chapter "Scaling up"): every process
trains on its share of each epoch and only rank 0 prints and writes ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn

from fcn_course.data import ShapesSegmentation
from fcn_course.metrics import ConfusionMatrix
from fcn_course.models import (
    MODEL_BUILDERS,
    backbone_from_spec,
    build_model,
    model_from_spec,
    model_spec,
)
from fcn_course.models.vgg import CourseVGG
from fcn_course.train import (
    DistInfo,
    TrainConfig,
    TrainResult,
    cleanup_distributed,
    evaluate,
    fit,
    init_distributed,
    load_checkpoint,
    seed_everything,
)
from fcn_course.viz import colorize, overlay

EXIT_DIVERGED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

_SCORES = (
    ("pixel_accuracy", "pixel acc"),
    ("mean_accuracy", "mean acc"),
    ("mean_iou", "mean IU"),
    ("fw_iou", "f.w. IU"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    train = subparsers.add_parser(
        "train",
        help="train an FCN on the course's synthetic shapes, with checkpoints and resume",
        formatter_class=formatter,
        description=_description(
            "Train a model on ShapesSegmentation (generated, no download). After every epoch "
            "OUT/last.pt (a checkpoint) and OUT/history.json (loss and validation metrics per "
            "epoch) are written atomically; Ctrl-C keeps every finished epoch, and --resume "
            "continues exactly where the run stopped.",
            "fcn-course train --model fcn8s --epochs 10 --image-size 128 --out runs/fcn8s",
            "fcn-course train --model fcn8s --epochs 10 --image-size 128 --out runs/fcn8s "
            "--resume",
        ),
        epilog=_TORCHRUN_EPILOG,
    )
    train.add_argument("--model", default="fcn8s", choices=list(MODEL_BUILDERS),
                       help="architecture (default: fcn8s)")
    train.add_argument("--epochs", type=_positive_int, default=10, help="default: 10")
    train.add_argument("--batch-size", type=_positive_int, default=16,
                       help="images per step and per process (default: 16)")
    train.add_argument("--lr", type=_positive_float, default=0.01,
                       help="peak learning rate, decayed by the poly schedule (default: 0.01)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                       help="SGD with momentum 0.9, or Adam (default: sgd)")
    train.add_argument("--image-size", type=_positive_int, default=128,
                       help="side of the square images in pixels (default: 128)")
    train.add_argument("--train-images", type=_positive_int, default=1000, help="default: 1000")
    train.add_argument("--val-images", type=_non_negative_int, default=200,
                       help="images scored after every epoch; 0 skips validation (default: 200)")
    train.add_argument("--seed", type=_non_negative_int, default=0,
                       help="seeds initialisation, shuffling and dropout (default: 0)")
    train.add_argument("--data-seed", type=_non_negative_int, default=0,
                       help="selects the generated data set (default: 0)")
    train.add_argument("--out", help="folder for last.pt and history.json (default: runs/MODEL)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out (same settings) instead of starting anew")
    train.add_argument("--backbone-checkpoint", metavar="PATH",
                       help="start from a pre-trained course classifier: a checkpoint whose "
                       "'model_state' is a course_vgg() state_dict")
    _add_device(train)
    train.add_argument("--num-workers", type=_non_negative_int, default=0,
                       help="data-loading processes (default: 0)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--json", action="store_true",
                       help="print the result as JSON on stdout (epoch lines go to stderr)")
    train.set_defaults(func=_train)

    evaluate_parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint: the FCN paper's four metrics and a per-class table",
        formatter_class=formatter,
        description=_description(
            "Rebuild the model stored in a checkpoint and score it on a split of "
            "ShapesSegmentation: pixel accuracy, mean accuracy, mean IU, frequency-weighted "
            "IU, accuracy near object boundaries, and IoU and accuracy per class. Image size "
            "and data seed default to the ones the run was trained with.",
            "fcn-course evaluate runs/fcn8s/last.pt --split test --images 200",
        ),
    )
    evaluate_parser.add_argument("checkpoint", help="a checkpoint written by fcn-course train")
    evaluate_parser.add_argument("--split", choices=("val", "test"), default="val",
                                 help="default: val")
    evaluate_parser.add_argument("--images", type=_positive_int,
                                 help="how many images (default: the run's --val-images, or 200)")
    evaluate_parser.add_argument("--image-size", type=_positive_int,
                                 help="image side in pixels (default: the run's)")
    evaluate_parser.add_argument("--batch-size", type=_positive_int, default=32,
                                 help="default: 32")
    _add_device(evaluate_parser)
    evaluate_parser.add_argument("--json", action="store_true", help="print JSON only")
    evaluate_parser.set_defaults(func=_evaluate)

    predict = subparsers.add_parser(
        "predict",
        help="segment one image file and save the coloured mask and an overlay",
        formatter_class=formatter,
        description=_description(
            "Run a checkpoint's model on an image file (PNG, JPEG, ...; read as RGB) and "
            "write the predicted label map in the course's colours and the image with the "
            "mask blended over it.",
            "fcn-course predict runs/fcn8s/last.pt photo.png --out-mask mask.png "
            "--out-overlay overlay.png",
        ),
    )
    predict.add_argument("checkpoint", help="a checkpoint written by fcn-course train")
    predict.add_argument("image", help="the image file to segment")
    predict.add_argument("--out-mask", metavar="PATH",
                         help="coloured mask PNG (default: IMAGE_mask.png beside the image)")
    predict.add_argument("--out-overlay", metavar="PATH",
                         help="overlay PNG (default: IMAGE_overlay.png beside the image)")
    predict.add_argument("--alpha", type=_unit_float, default=0.5,
                         help="opacity of the mask in the overlay, 0 to 1 (default: 0.5)")
    _add_device(predict)
    predict.set_defaults(func=_predict)


_TORCHRUN_EPILOG = """\
several processes (GPUs, or CPU processes):
  torchrun --nproc_per_node=2 -m fcn_course train --model fcn8s --out runs/fcn8s-ddp
  python -m torch.distributed.run --nproc_per_node=2 -m fcn_course train --out runs/ddp

  Each process trains on its own share of every epoch (a DistributedSampler
  seeded by --seed) with --batch-size images per step, so one step sees
  nproc_per_node x --batch-size images; DistributedDataParallel averages the
  gradients. Validation scores every image once and sums the counts over the
  processes. Only rank 0 prints and writes OUT. GPUs use NCCL, each process
  on cuda:LOCAL_RANK; CPUs use gloo. --resume needs the same --nproc_per_node.
"""


# ----------------------------------------------------------------------------- arguments


def _description(prose: str, *examples: str) -> str:
    """Help text: the prose wrapped, then the examples as typed (the formatter keeps both)."""
    lines = "\n".join(f"  {example}" for example in examples)
    return f"{textwrap.fill(prose, 79)}\n\nexample:\n{lines}"


def _positive_int(text: str) -> int:
    value = _parse(text, int, "a positive int")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _parse(text, int, "an int >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _parse(text, float, "a positive number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _unit_float(text: str) -> float:
    value = _parse(text, float, "a number in [0, 1]")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _parse(text: str, kind: Callable[[str], Any], expected: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:1, ... (default: auto, the GPU when there is one)")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device expected cpu, cuda or cuda:N, got {name!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    return device


def _bad_input(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report the package's input errors in one line on stderr, with exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (OSError, ValueError, TypeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return run


# ----------------------------------------------------------------------------- files


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN becomes null (undefined per-class scores), keys become strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a crash leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(_json_safe(data), indent=1, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def _classifier_from_checkpoint(path: str) -> CourseVGG:
    """The pre-trained course classifier in ``path``, its architecture read from the shapes."""
    state = load_checkpoint(path)
    weights = state["model_state"]
    where = f"--backbone-checkpoint {path!r}"
    if not isinstance(weights, Mapping) or "classifier.fc6.weight" not in weights:
        if state.get("model_spec") is not None:
            raise ValueError(
                f"{where} holds a segmentation model ({state['model_spec'].get('name')}), not "
                "a classifier; to continue training it use --out with its folder and --resume"
            )
        shown = ", ".join(list(weights)[:4]) if isinstance(weights, Mapping) else "none"
        raise ValueError(
            f"{where}: expected the state_dict of a course classifier (course_vgg(), keys such "
            f"as 'features.conv1_1.weight' and 'classifier.fc6.weight'), got keys {shown}, ...; "
            "pass a checkpoint whose 'model_state' is a course_vgg().state_dict()"
        )
    convs = [k for k in weights if k.startswith("features.conv") and k.endswith(".weight")]
    cfg: list[int | str] = []
    stage = 1
    for key in convs:
        layer_stage = int(key.removeprefix("features.conv").split("_")[0])
        if layer_stage != stage:
            cfg.append("M")
            stage = layer_stage
        cfg.append(int(weights[key].shape[0]))
    cfg.append("M")
    fc6 = weights["classifier.fc6.weight"]  # (fc_width, C5 * k * k)
    pool5 = math.isqrt(fc6.shape[1] // max(int(cfg[-2]), 1)) if convs else 0
    spec = {
        "kind": "CourseVGG",
        "cfg": cfg,
        "batch_norm": any(k.startswith("features.bn") for k in weights),
        "in_channels": int(weights[convs[0]].shape[1]) if convs else 3,
        "input_size": 32 * max(pool5, 1),
        "fc_width": int(fc6.shape[0]),
        "num_classes": int(weights["classifier.fc8.weight"].shape[0])
        if "classifier.fc8.weight" in weights else 1,
        "dropout": 0.5,
    }
    try:
        classifier = backbone_from_spec(spec)
        classifier.load_state_dict(weights)
    except (RuntimeError, ValueError, TypeError) as err:
        detail = " ".join(str(err).split())[:300]
        raise ValueError(
            f"{where} does not fit a course classifier ({detail}); pass a checkpoint whose "
            "'model_state' is the state_dict of a course_vgg()"
        ) from err
    return classifier


def _model_from_checkpoint(path: str, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The model a checkpoint describes, with its weights, in eval mode; and the checkpoint."""
    state = load_checkpoint(path, map_location=str(device))
    spec = state.get("model_spec")
    if spec is None:
        raise ValueError(
            f"checkpoint {path!r} has no model_spec, so its model cannot be rebuilt; it was "
            "written by fit() without model_spec=...; write checkpoints with fcn-course train, "
            "or pass fit(..., model_spec=fcn_course.models.model_spec(name, **kwargs))"
        )
    model = model_from_spec(spec)
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise ValueError(
            f"checkpoint {path!r}: its weights do not fit its model_spec ({detail})"
        ) from err
    return model.to(device).eval(), state


def _class_names(state: Mapping[str, Any], num_classes: int) -> list[str]:
    names = (state.get("metadata") or {}).get("classes")
    if isinstance(names, list) and len(names) == num_classes:
        return [str(n) for n in names]
    return [f"class {i}" for i in range(num_classes)]


# ----------------------------------------------------------------------------- train


def _resume_command(args: argparse.Namespace, out: Path) -> str:
    """The command line that continues this run."""
    words = [
        "fcn-course", "train", "--model", args.model, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--lr", repr(args.lr),
        "--optimizer", args.optimizer, "--image-size", str(args.image_size),
        "--train-images", str(args.train_images), "--val-images", str(args.val_images),
        "--seed", str(args.seed),
    ]
    if args.data_seed:
        words += ["--data-seed", str(args.data_seed)]
    if args.backbone_checkpoint:
        words += ["--backbone-checkpoint", args.backbone_checkpoint]
    if args.num_workers:
        words += ["--num-workers", str(args.num_workers)]
    words += ["--out", str(out), "--resume"]
    return shlex.join(words)


def _saved_epoch(checkpoint: Path) -> int | None:
    """The last finished epoch stored in ``checkpoint``, or None when there is none."""
    if not checkpoint.is_file():
        return None
    return int(load_checkpoint(checkpoint)["epoch"])


def _epoch_line(epoch: int, epochs: int, history: Mapping[str, list[float]]) -> str:
    line = f"epoch {epoch}/{epochs}  loss {history['train_loss'][-1]:.4f}"
    if history.get("val_mean_iou"):
        line += f"  val mean IU {_percent(history['val_mean_iou'][-1])}"
    return line + f"  {history['seconds'][-1]:.1f} s"


@_bad_input
def _train(args: argparse.Namespace) -> int:
    device = _device(args.device)
    # Under torchrun (RANK, WORLD_SIZE, ... set) join the other processes; alone, a no-op.
    joined_here = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    info = init_distributed("nccl" if device.type == "cuda" else "gloo")
    try:
        if info.distributed and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", info.local_rank)
        return _train_on(args, device, info)
    finally:
        if info.distributed and joined_here:
            cleanup_distributed()


def _train_on(args: argparse.Namespace, device: torch.device, info: DistInfo) -> int:
    """``fcn-course train`` in this process: one of ``info.world_size``; rank 0 reports."""
    out = Path(args.out or Path("runs") / args.model)
    checkpoint, history_file = out / "last.pt", out / "history.json"
    log: TextIO = sys.stderr if args.json else sys.stdout
    saved = _saved_epoch(checkpoint)
    if saved is not None and not args.resume:
        raise ValueError(
            f"{checkpoint} already holds a run (epoch {saved} finished); pass --resume to "
            "continue it, or choose another --out (nothing was overwritten)"
        )
    if saved is None and args.resume and info.is_main:
        print(f"no checkpoint in {out} yet: starting a new run", file=log)

    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        seed=args.seed, num_workers=args.num_workers,
    )
    data = {"image_size": args.image_size, "seed": args.data_seed}
    train_set = ShapesSegmentation("train", num_images=args.train_images, **data)
    val_set = (ShapesSegmentation("val", num_images=args.val_images, **data)
               if args.val_images else None)
    kwargs: dict[str, Any] = {"num_classes": train_set.num_classes}
    if args.backbone_checkpoint:
        kwargs["backbone"] = _classifier_from_checkpoint(args.backbone_checkpoint)
    seed_everything(args.seed)  # the model's initial weights follow --seed too
    model = build_model(args.model, **kwargs)
    metadata = {
        "dataset": "ShapesSegmentation", "image_size": args.image_size,
        "train_images": args.train_images, "val_images": args.val_images,
        "data_seed": args.data_seed, "classes": list(train_set.classes),
    }

    def epoch_done(epoch: int, history: dict[str, list[float]]) -> None:
        if not info.is_main:
            return
        _write_json(history_file, history)
        print(_epoch_line(epoch, config.epochs, history), file=log, flush=True)

    try:
        result = fit(
            model, train_set, val_set, config, out_dir=out, resume=args.resume,
            model_spec=model_spec(args.model, **kwargs), metadata=metadata,
            progress=not args.no_progress, device=device, on_epoch_end=epoch_done,
        )
    except KeyboardInterrupt:
        if not info.is_main:
            return EXIT_INTERRUPTED
        finished = _saved_epoch(checkpoint)
        if finished is None:
            print(f"\ninterrupted before the first epoch finished; nothing was saved. Start "
                  f"again with:\n  {_resume_command(args, out)}", file=sys.stderr)
        else:
            print(f"\ninterrupted; epoch {finished} of {config.epochs} is the last finished "
                  f"one, saved in {checkpoint} (history in {history_file}). Resume with:\n  "
                  f"{_resume_command(args, out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FloatingPointError as err:
        if info.is_main:
            print(f"error: {err}", file=sys.stderr)
        return EXIT_DIVERGED

    if not info.is_main:
        return 0
    _write_json(history_file, result.history)
    _report_training(args, result, list(train_set.classes), out, checkpoint, history_file, log)
    return 0


def _report_training(
    args: argparse.Namespace,
    result: TrainResult,
    classes: list[str],
    out: Path,
    checkpoint: Path,
    history_file: Path,
    log: TextIO,
) -> None:
    if result.epochs_run == 0:
        print(f"the run in {out} had already finished its {args.epochs} epochs", file=log)
    metrics = result.metrics
    if args.json:
        summary: dict[str, Any] = {
            "model": args.model, "out": str(out), "checkpoint": str(checkpoint),
            "history_file": str(history_file), "epochs": args.epochs,
            "epochs_run": result.epochs_run, "seconds": result.seconds,
            "images_per_second": result.images_per_second, "history": result.history,
            "metrics": _metrics_summary(metrics, classes) if metrics else None,
        }
        print(json.dumps(_json_safe(summary), indent=1, allow_nan=False))
        return
    if metrics:
        line = "  ".join(f"{label} {_percent(metrics[key])}" for key, label in _SCORES)
        width, accuracy = next(iter(metrics["boundary_accuracy"].items()))
        print(f"final (val, {args.val_images} images): {line}  boundary acc ({width} px) "
              f"{_percent(accuracy)}")
    print(f"checkpoint {checkpoint}, history {history_file}; score it with: fcn-course "
          f"evaluate {shlex.quote(str(checkpoint))}")


def _metrics_summary(metrics: Mapping[str, Any], names: list[str] | None = None) -> dict[str, Any]:
    """The scores as flat JSON: the four metrics, boundary accuracy, and per class."""
    width, accuracy = next(iter(metrics["boundary_accuracy"].items()))
    names = names or [f"class {i}" for i in range(len(metrics["iou"]))]
    summary: dict[str, Any] = {key: metrics[key] for key, _ in _SCORES}
    summary["boundary_accuracy"] = accuracy
    summary["boundary_width"] = width
    summary["per_class"] = {
        name: {"iou": iou, "accuracy": acc, "pixels": sum(row)}
        for name, iou, acc, row in zip(names, metrics["iou"], metrics["accuracy"],
                                       metrics["confusion_matrix"], strict=True)
    }
    summary["confusion_matrix"] = metrics["confusion_matrix"]
    return summary


# ----------------------------------------------------------------------------- evaluate


@_bad_input
def _evaluate(args: argparse.Namespace) -> int:
    device = _device(args.device)
    model, state = _model_from_checkpoint(args.checkpoint, device)
    metadata = state.get("metadata") or {}
    config = TrainConfig.from_dict(state["config"]) if "config" in state else TrainConfig()
    images = args.images or (metadata.get("val_images") if args.split == "val" else None) or 200
    image_size = args.image_size or metadata.get("image_size", 128)
    dataset = ShapesSegmentation(args.split, num_images=images, image_size=image_size,
                                 seed=metadata.get("data_seed", 0))
    classes = state.get("num_classes") or getattr(model, "num_classes", None)
    if classes != dataset.num_classes:
        raise ValueError(
            f"checkpoint {args.checkpoint!r} predicts {classes} classes but ShapesSegmentation "
            f"has {dataset.num_classes} ({', '.join(dataset.classes)}); evaluate it on data "
            f"with its {classes} classes (fcn_course.train.evaluate), or train a model for "
            "this data set with fcn-course train"
        )
    scores = evaluate(model, dataset, batch_size=args.batch_size,
                      ignore_index=config.ignore_index,
                      boundary_widths=(config.boundary_width,), device=device)
    names = list(dataset.classes)
    name = (state.get("model_spec") or {}).get("name", "model")
    if args.json:
        summary = {
            "checkpoint": args.checkpoint, "model": name, "epoch": state.get("epoch"),
            "split": args.split, "images": images, "image_size": image_size,
            **_metrics_summary(scores, names),
        }
        print(json.dumps(_json_safe(summary), indent=1, allow_nan=False))
        return 0
    matrix = ConfusionMatrix(dataset.num_classes, config.ignore_index, class_names=names)
    matrix.matrix = torch.tensor(scores["confusion_matrix"], dtype=torch.int64)
    width, accuracy = next(iter(scores["boundary_accuracy"].items()))
    print(f"{args.checkpoint}: {name}, epoch {state.get('epoch')}, on the {args.split} split "
          f"({images} images of {image_size}x{image_size})")
    print("  ".join(f"{label} {_percent(scores[key])}" for key, label in _SCORES)
          + f"  boundary acc ({width} px) {_percent(accuracy)}")
    print()
    print(matrix)
    return 0


# ----------------------------------------------------------------------------- predict


def _read_image(path: Path) -> torch.Tensor:
    """An image file as the float ``(3, H, W)`` tensor in [0, 1] the data sets return."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(
            f"image file {str(path)!r} does not exist; pass the path of a PNG or JPEG file"
        )
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")  # also decodes, so a truncated file fails here
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(
            f"cannot read {str(path)!r} as an image ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'unknown format'}); pass a PNG or "
            "JPEG file"
        ) from err
    pixels = torch.from_numpy(np.array(rgb, dtype=np.uint8))  # (H, W, 3)
    return pixels.permute(2, 0, 1).float().div(255)  # (3, H, W)


def _save_png(path: Path, pixels: torch.Tensor) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.numpy()).save(path, format="PNG")


@_bad_input
def _predict(args: argparse.Namespace) -> int:
    device = _device(args.device)
    image_path = Path(args.image)
    image = _read_image(image_path)
    model, state = _model_from_checkpoint(args.checkpoint, device)
    with torch.no_grad():
        labels = model(image.unsqueeze(0).to(device)).argmax(1)[0].cpu()  # (H, W)
    stem = image_path.with_suffix("")
    mask_path = Path(args.out_mask or f"{stem}_mask.png")
    overlay_path = Path(args.out_overlay or f"{stem}_overlay.png")
    _save_png(mask_path, colorize(labels))
    _save_png(overlay_path, overlay(image, labels, alpha=args.alpha))
    counts = torch.bincount(labels.flatten(), minlength=int(labels.max()) + 1).tolist()
    names = _class_names(state, int(state.get("num_classes") or len(counts)))
    found = ", ".join(f"{names[k]} {_percent(c / labels.numel())}"
                      for k, c in enumerate(counts) if c)
    print(f"wrote {mask_path} and {overlay_path} ({labels.shape[0]}x{labels.shape[1]}); "
          f"predicted: {found}")
    return 0
