"""Training and evaluation loops (chapter "Training with a pixel-wise loss").

The loop is meant to be read: one epoch is "for each batch: forward, pixel-wise loss,
backward, step", then an evaluation pass with the FCN paper's metrics. Around it sit the
things a practitioner needs: SGD or Adam, the poly learning-rate schedule, a progress bar,
checkpoints written atomically after every epoch, and a resume that continues exactly where
the run stopped (same batches, same random numbers, same result as an uninterrupted run).

The same loop trains on several processes (chapter "Scaling up"): launched by ``torchrun``,
each process calls :func:`init_distributed`, and :func:`fit` then wraps the model in
``DistributedDataParallel``, gives every process its own part of each epoch through a
``DistributedSampler``, sums the evaluation counts over the processes, and lets only the
first process write checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import random
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from fcn_course._validation import check_choice, check_int, describe, fail
from fcn_course.losses import pixel_cross_entropy
from fcn_course.metrics import ConfusionMatrix, TrimapAccuracy

__all__ = [
    "CHECKPOINT_VERSION",
    "DistInfo",
    "TrainConfig",
    "TrainResult",
    "cleanup_distributed",
    "dist_info",
    "evaluate",
    "fit",
    "init_distributed",
    "load_checkpoint",
    "make_optimizer",
    "poly_schedule",
    "save_checkpoint",
    "seed_everything",
]

CHECKPOINT_VERSION = 1


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of one training run; saved in every checkpoint."""

    epochs: int = 10
    #: images per step *per process*: with N processes a step sees N * batch_size images
    batch_size: int = 16
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["poly", "constant"] = "poly"
    poly_power: float = 0.9
    #: scales the learning rate of parameters whose name starts with "backbone."
    backbone_lr_scale: float = 1.0
    loss_reduction: Literal["mean", "sum"] = "mean"
    class_weights: list[float] | None = None
    ignore_index: int = 255
    seed: int = 0
    num_workers: int = 0
    #: band half-width, in pixels, of the boundary (trimap) accuracy reported each epoch
    boundary_width: int = 3
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        where = "TrainConfig()"
        check_int(where, "epochs", self.epochs, minimum=1)
        check_int(where, "batch_size", self.batch_size, minimum=1)
        check_int(where, "eval_batch_size", self.eval_batch_size, minimum=1)
        check_int(where, "num_workers", self.num_workers, minimum=0)
        check_int(where, "boundary_width", self.boundary_width, minimum=1)
        check_int(where, "seed", self.seed)
        check_int(where, "ignore_index", self.ignore_index, fix="the label of void pixels: 255")
        check_choice(where, "optimizer", self.optimizer, ("sgd", "adam"))
        check_choice(where, "schedule", self.schedule, ("poly", "constant"))
        check_choice(where, "loss_reduction", self.loss_reduction, ("mean", "sum"))
        for name in ("lr", "momentum", "weight_decay", "poly_power", "backbone_lr_scale"):
            value = getattr(self, name)
            if (
                isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0
            ):
                raise fail(where, name, "a finite non-negative number", describe(value), "")
            # Floats throughout, so that a config saved with lr=1 equals one given lr=1.0.
            setattr(self, name, float(value))
        if self.lr == 0:
            raise fail(where, "lr", "a positive learning rate", "0", "e.g. lr=0.01 for SGD")
        if self.momentum >= 1:
            raise fail(where, "momentum", "a number in [0, 1)", repr(self.momentum), "e.g. 0.9")
        if self.class_weights is not None:
            weights = self.class_weights
            if isinstance(weights, str) or not isinstance(weights, list | tuple) or not all(
                not isinstance(w, bool) and isinstance(w, int | float) and math.isfinite(w)
                and w >= 0 for w in weights
            ) or not weights:
                raise fail(
                    where, "class_weights", "None or a list of non-negative numbers, one per "
                    "class", describe(weights),
                    "e.g. fcn_course.losses.class_weights_from_counts(...).tolist()",
                )
            self.class_weights = [float(w) for w in weights]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise fail(
                "TrainConfig.from_dict()", "data", f"keys among {sorted(known)}",
                f"unknown keys {unknown}", "remove them",
            )
        return cls(**data)


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns: the per-epoch history and the final evaluation."""

    history: dict[str, list[float]]
    metrics: dict[str, Any]
    epochs_run: int
    seconds: float
    images_per_second: float


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's and torch's generators; returns a generator for data-loader shuffling."""
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def poly_schedule(total_steps: int, power: float = 0.9) -> Callable[[int], float]:
    """The poly learning-rate factor ``(1 - step / total_steps) ** power`` (DeepLab)."""
    check_int("poly_schedule()", "total_steps", total_steps, minimum=1)

    def factor(step: int) -> float:
        return max(0.0, 1.0 - step / total_steps) ** power

    return factor


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or Adam, with the backbone's learning rate scaled if asked.

    Biases and normalisation parameters get no weight decay, as is common practice.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (name.startswith("backbone."), param.ndim <= 1)
        groups.setdefault(key, []).append(param)
    param_groups = []
    for (is_backbone, no_decay), params in sorted(groups.items()):
        param_groups.append({
            "params": params,
            "lr": config.lr * (config.backbone_lr_scale if is_backbone else 1.0),
            "weight_decay": 0.0 if no_decay else config.weight_decay,
        })
    if not param_groups:
        raise fail("make_optimizer()", "model", "a model with trainable parameters",
                   "none that require grad", "unfreeze some layers")
    if config.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(param_groups, lr=config.lr)


# ----------------------------------------------------------------------------- processes


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """This process's place in a multi-process run; one process of one when training alone."""

    rank: int = 0
    world_size: int = 1
    #: the GPU index of this process on its machine (``cuda:LOCAL_RANK``)
    local_rank: int = 0
    #: the ``torch.distributed`` backend ("gloo", "nccl"), None without a process group
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints and shows progress (rank 0)."""
        return self.rank == 0


_TORCHRUN = (
    "launch with `torchrun --nproc_per_node=N ...` (it sets RANK, WORLD_SIZE, LOCAL_RANK, "
    "MASTER_ADDR and MASTER_PORT), or unset WORLD_SIZE to train in one process"
)


def _env_int(where: str, name: str, default: int, minimum: int) -> int:
    """The environment variable ``name`` as an int >= ``minimum``; ``default`` when unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value = int(text) if re.fullmatch(r"[+-]?\d+", text) else None
    if value is None or value < minimum:
        raise ValueError(
            f"{where}: environment variable {name} expected an int >= {minimum}, got "
            f"{text!r}; {_TORCHRUN}"
        )
    return value


def _env_info(where: str) -> DistInfo:
    """The process's place as ``torchrun`` describes it in RANK, WORLD_SIZE, LOCAL_RANK."""
    world_size = _env_int(where, "WORLD_SIZE", 1, 1)
    rank = _env_int(where, "RANK", 0, 0)
    local_rank = _env_int(where, "LOCAL_RANK", rank, 0)
    if rank >= world_size:
        raise ValueError(
            f"{where}: environment variable RANK expected an int in [0, WORLD_SIZE="
            f"{world_size}), got {rank}; {_TORCHRUN}"
        )
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def dist_info() -> DistInfo:
    """This process's rank and the number of processes of the current process group.

    One process of one when ``torch.distributed`` is not initialised. Chapter "Scaling up".
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return DistInfo()
    rank = torch.distributed.get_rank()
    return DistInfo(
        rank=rank, world_size=torch.distributed.get_world_size(),
        local_rank=_env_int("dist_info()", "LOCAL_RANK", rank, 0),
        backend=str(torch.distributed.get_backend()),
    )


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in its environment variables.

    ``torchrun --nproc_per_node=N script.py`` starts N processes and gives each RANK,
    WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Without them (or with
    WORLD_SIZE=1) nothing is initialised and the result is one process of one, so a script
    may call this unconditionally; an already initialised group is returned as it is.

    Args:
        backend: ``"nccl"`` (GPUs) or ``"gloo"`` (CPUs); by default NCCL when CUDA is
            available, else gloo. With NCCL the process's GPU becomes ``cuda:LOCAL_RANK``.

    Call :func:`cleanup_distributed` when done. Chapter "Scaling up".
    """
    where = "init_distributed()"
    if backend is not None:
        check_choice(where, "backend", backend, ("gloo", "nccl"),
                     fix="gloo for CPUs, nccl for NVIDIA GPUs, or None to choose")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return dist_info()
    info = _env_info(where)
    if not info.distributed:
        return info
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise ValueError(
            f"{where}: WORLD_SIZE={info.world_size} asks for several processes, but the "
            f"environment variables {' and '.join(missing)} are not set; {_TORCHRUN}"
        )
    if not torch.distributed.is_available():
        raise RuntimeError(
            f"{where}: WORLD_SIZE={info.world_size} asks for several processes, but this "
            "build of PyTorch has no torch.distributed; unset WORLD_SIZE to train in one "
            "process"
        )
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise fail(where, "backend", "'gloo' on a machine without CUDA", "'nccl'",
                       "pass backend='gloo' (or None)")
        torch.cuda.set_device(info.local_rank)
    torch.distributed.init_process_group(
        backend, init_method="env://", rank=info.rank, world_size=info.world_size,
    )
    return dataclasses.replace(info, backend=backend)


def cleanup_distributed() -> None:
    """Leave the process group :func:`init_distributed` joined; a no-op without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper, or ``model`` itself."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _reduce(values: list[float], device: torch.device, op: str = "sum") -> list[float]:
    """``values`` summed (or maxed) over all processes; unchanged in a single process."""
    if dist_info().world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    reduce_op = torch.distributed.ReduceOp.MAX if op == "max" else torch.distributed.ReduceOp.SUM
    torch.distributed.all_reduce(tensor, op=reduce_op)
    return tensor.tolist()


def _broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every process.

    ``DistributedDataParallel`` broadcasts them before each training forward, which then
    updates them from the process's own batch; after an epoch they differ by process.
    Evaluating and saving rank 0's copy on every process keeps the metrics those of the
    checkpoint.
    """
    if dist_info().world_size == 1:
        return
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer, src=0)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a crash leaves the old file intact.

    The data goes to a temporary file in the same folder, is flushed to disk, and only then
    replaces ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    if not isinstance(state, Mapping):
        raise fail("save_checkpoint()", "state", "a dict", describe(state), "", error=TypeError)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"load_checkpoint(): argument 'path' expected an existing checkpoint file, got "
            f"{str(path)!r}; train one with `fcn-course train --out DIR` (it writes DIR/last.pt)"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only=True refuses to unpickle classes and functions, which could run code.
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused is None:
            raise _unreadable(path, "its bytes are not a torch.save archive") from err
        raise ValueError(
            f"load_checkpoint(): {str(path)!r} holds a pickled Python object "
            f"({refused.group(1)}), not only tensors and plain data (str, numbers, lists, "
            "dicts); such objects are refused because unpickling them can run arbitrary code, "
            "and a checkpoint written by fcn_course.train.fit holds none. Only if you trust "
            "the file, load it with torch.load(path, weights_only=False) and save its "
            "state_dicts again"
        ) from err
    except Exception as err:
        first_sentence = str(err).split(". ")[0].splitlines()[0] if str(err) else ""
        raise _unreadable(path, f"{type(err).__name__}: {first_sentence[:200]}") from err
    if not isinstance(state, dict) or "model_state" not in state:
        raise ValueError(
            f"load_checkpoint(): {str(path)!r} holds no 'model_state'; expected a checkpoint "
            "written by fcn_course.train.fit (a dict with 'model_state', 'config', ...)"
        )
    return state


def _unreadable(path: Path, detail: str) -> ValueError:
    return ValueError(
        f"load_checkpoint(): {str(path)!r} is not a readable checkpoint ({detail}); it may be "
        "truncated or not a file written by torch.save; was it written by fcn-course?"
    )


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _plain_data(where: str, name: str, value: Any) -> Any:
    """``value`` round-tripped through JSON: plain data a checkpoint can hold and compare."""
    if value is None:
        return None
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise fail(
            where, name, "a dict of plain data (str, int, float, bool, None, lists, dicts)",
            describe(value), "torch.load(weights_only=True) refuses anything else; for a "
            "model use fcn_course.models.model_spec(...)", error=TypeError,
        ) from err


def _differences(saved: Any, given: Any, prefix: str) -> list[str]:
    """``"key (old -> new)"`` for every entry where two plain-data dicts differ."""
    if isinstance(saved, dict) and isinstance(given, dict):
        out: list[str] = []
        for key in sorted(set(saved) | set(given)):
            out += _differences(saved.get(key), given.get(key), f"{prefix}{key}.")
        return out
    if saved == given:
        return []

    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    return [f"{prefix.rstrip('.')} ({short(saved)} -> {short(given)})"]


# ----------------------------------------------------------------------------- loops


class _NoBar:
    """Stands in for a tqdm bar when progress is off."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, *, enabled: bool, desc: str) -> Any:
    """A tqdm bar of ``total`` steps when enabled and not under CI; a silent stand-in otherwise.

    The bar is told the length only and advanced by hand: given the data loader itself,
    ``tqdm.auto``'s bar calls ``iter()`` on it once more, which draws from the loader's
    shuffling generator, so the batch order would depend on whether a bar is shown.
    """
    if not enabled or os.environ.get("CI"):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, leave=False, dynamic_ncols=True, desc=desc)


def _batches(
    dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int, num_workers: int
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
        num_workers=num_workers, drop_last=False,
    )


def _infer_num_classes(where: str, dataset: Dataset, num_classes: int | None) -> int:
    if num_classes is not None:
        return check_int(where, "num_classes", num_classes, minimum=1)
    value = getattr(dataset, "num_classes", None)
    if value is None:
        raise fail(
            where, "num_classes", "an int (the data set has no .num_classes)", "None",
            "pass num_classes=...",
        )
    return int(value)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    num_classes: int | None = None,
    batch_size: int = 32,
    ignore_index: int = 255,
    boundary_widths: tuple[int, ...] = (3,),
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate ``model`` over a whole data set: the four FCN metrics and boundary accuracy.

    The confusion matrix is accumulated over every pixel of the data set before the metrics
    are computed (data-set-level averaging, as in the paper). Returns the dict of
    :meth:`ConfusionMatrix.compute` plus ``boundary_accuracy`` (``{width: accuracy}``) and
    ``confusion_matrix`` (the counts as a list of rows: ground truth by prediction).

    Under ``torch.distributed`` every process must call it, with the whole data set: each
    scores the images ``rank, rank + world_size, ...`` (a split without the padding of a
    ``DistributedSampler``, so no image counts twice), the counts are summed over the
    processes, and every process returns the metrics of the whole data set.

    Chapter "Evaluation"; several processes: chapter "Scaling up".
    """
    where = "evaluate()"
    num_classes = _infer_num_classes(where, dataset, num_classes)
    check_int(where, "batch_size", batch_size, minimum=1)
    # The bare model: a DistributedDataParallel forward is a collective, and the processes'
    # shares of the data set may differ by one batch.
    model = _unwrap(model)
    info = dist_info()
    if info.distributed:
        dataset = Subset(dataset, range(info.rank, len(dataset), info.world_size))  # type: ignore[arg-type]
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index)
    trimap = TrimapAccuracy(list(boundary_widths), ignore_index)
    loader = _batches(dataset, batch_size, shuffle=False, seed=0, num_workers=0)
    bar = _progress_bar(len(loader), enabled=progress and info.is_main, desc="eval")
    try:
        for images, masks in loader:
            images, masks = images.to(device), masks.to(device)
            logits = model(images)  # (N, C, H, W)
            if logits.ndim != 4 or logits.shape[1] != num_classes:
                raise fail(
                    where, "model", f"logits (N, {num_classes}, H, W) for the data set's "
                    f"{num_classes} classes", f"logits of shape {tuple(logits.shape)}",
                    "evaluate a model built with the data set's num_classes",
                )
            labels = logits.argmax(1)  # (N, H, W)
            matrix.update(labels, masks)
            trimap.update(labels.cpu(), masks.cpu())
            bar.update()
    finally:
        bar.close()
        model.train(was_training)
    matrix.all_reduce()
    trimap.all_reduce()
    scores: dict[str, Any] = dict(matrix.compute())
    scores["boundary_accuracy"] = trimap.compute()
    scores["confusion_matrix"] = matrix.matrix.cpu().tolist()
    return scores


def _train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    weight: torch.Tensor | None,
    device: torch.device,
    progress: bool,
    epoch: int,
    world_size: int = 1,
) -> tuple[float, int]:
    model.train()
    total, seen = 0.0, 0
    desc = f"epoch {epoch + 1}/{config.epochs}"
    bar = _progress_bar(len(loader), enabled=progress, desc=desc)
    try:
        for images, masks in loader:
            loss = _train_step(model, images, masks, optimizer, scheduler, config, weight,
                               device, epoch, world_size)
            total += loss * images.shape[0]
            seen += images.shape[0]
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}")
    finally:
        bar.close()
    return total / max(seen, 1), seen


def _train_step(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    weight: torch.Tensor | None,
    device: torch.device,
    epoch: int,
    world_size: int = 1,
) -> float:
    """One step: forward, pixel-wise loss, backward, update; returns the batch's loss.

    With several processes ``model`` is a ``DistributedDataParallel``, whose backward
    averages the gradients over the processes.
    """
    images, masks = images.to(device), masks.to(device)  # (N, 3, H, W), (N, H, W)
    logits = model(images)  # (N, C, H, W)
    loss = pixel_cross_entropy(
        logits, masks, ignore_index=config.ignore_index, weight=weight,
        reduction=config.loss_reduction,
    )
    finite = torch.isfinite(loss)
    if world_size > 1:
        # Every process stops at the same step, or the others would wait for it forever.
        finite = finite.to(torch.int64)
        torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    if not finite:
        hint = f"lower the learning rate (lr={config.lr})"
        if config.loss_reduction == "sum":
            # The summed loss, and its gradient, grow with the number of pixels per batch.
            hint += (
                "; with loss_reduction='sum' the gradient is N*H*W times that of 'mean' "
                f"(here {masks.numel()} pixels per batch), so the learning rate must be "
                "that much smaller (the FCN paper used 1e-10), or use loss_reduction='mean'"
            )
        value = loss.item()
        became = str(value) if not math.isfinite(value) else (
            f"{value} here but not finite on another process")
        raise FloatingPointError(
            f"training diverged: the loss became {became} at epoch {epoch + 1}; {hint}"
        )
    optimizer.zero_grad(set_to_none=True)
    if config.loss_reduction == "sum" and world_size > 1:
        # DDP averages the processes' gradients; a summed loss wants their sum, so that the
        # step is that of one process on the union of the batches.
        (loss * world_size).backward()
    else:
        loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    config: TrainConfig | None = None,
    *,
    num_classes: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    model_spec: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
    on_epoch_end: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``, evaluating on ``val_set`` after every epoch.

    With ``out_dir`` a checkpoint ``out_dir/last.pt`` is written atomically after every
    epoch (model, optimiser and schedule state, random-number state, history, the config,
    ``model_spec``, which :func:`fcn_course.models.model_from_spec` uses to rebuild the
    model, and ``metadata``, plain data about the run such as the data set's settings).
    With ``resume=True`` training continues from that checkpoint, if there is one, and ends
    exactly as an uninterrupted run would (on CPU, with ``num_workers=0``); resuming with a
    different config, ``model_spec`` or ``metadata`` raises a ValueError naming what changed.

    ``history`` holds one value per epoch: ``epoch``, ``train_loss`` (mean over the epoch's
    batches), ``lr`` (the head's learning rate after the epoch's last step), ``seconds``
    (wall time of the training pass) and, with ``val_set``, ``val_pixel_accuracy``,
    ``val_mean_accuracy``, ``val_mean_iou``, ``val_fw_iou`` and ``val_boundary_accuracy``.
    ``on_epoch_end(epoch, history)`` is called after the checkpoint is written.

    Several processes: when ``torch.distributed`` is initialised with more than one process
    (``torchrun`` and :func:`init_distributed`), every process calls ``fit`` with the same
    arguments, its own ``device`` (``cuda:LOCAL_RANK``) and a model built the same way.

    - The model is wrapped in ``DistributedDataParallel``, which starts every process from
      rank 0's weights and averages the gradients over the processes.
    - A ``DistributedSampler`` seeded with ``config.seed`` shuffles each epoch and gives every
      process its own share (padded by repeating a few images when the data set does not
      divide evenly). ``config.batch_size`` is per process, the PyTorch convention: a step
      sees ``world_size * batch_size`` images.
    - Validation scores every image once and sums the counts, so every process gets the
      same metrics and the same history; ``train_loss`` is the mean over all processes,
      ``seconds`` the slowest process's, and ``images_per_second`` counts every process's.
    - Only rank 0 writes the checkpoint (the others wait for it) and shows progress bars;
      ``on_epoch_end`` runs on every process. A resume needs the same number of processes.
    - With ``loss_reduction='mean'`` a step equals one process's step on the union of the
      batches when every process has as many labelled pixels (each averages its own); with
      ``'sum'`` always. Batch norm normalises each process's own batch; for statistics over
      the global batch convert the model with ``nn.SyncBatchNorm.convert_sync_batchnorm``.

    Chapter "Training with a pixel-wise loss"; several processes: chapter "Scaling up".
    """
    where = "fit()"
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise fail(where, "config", "a TrainConfig", describe(config), "", error=TypeError)
    if not isinstance(model, nn.Module):
        raise fail(where, "model", "an nn.Module", describe(model), "", error=TypeError)
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise fail(where, "train_set", "a non-empty data set", "0 items", "")
    num_classes = _infer_num_classes(where, train_set, num_classes)
    if config.class_weights is not None and len(config.class_weights) != num_classes:
        raise fail(
            where, "config.class_weights", f"{num_classes} weights, one per class",
            f"{len(config.class_weights)} weights", "give background a weight too",
        )
    if resume and out_dir is None:
        raise fail(where, "out_dir", "the folder of the run to resume", "None",
                   "pass out_dir=... together with resume=True")
    spec = _plain_data(where, "model_spec", model_spec)
    meta = _plain_data(where, "metadata", metadata)
    device = torch.device(device)
    info = dist_info()
    if info.backend == "nccl" and device.type != "cuda":
        raise fail(
            where, "device", "a CUDA device with the NCCL backend", repr(str(device)),
            "pass device=f'cuda:{LOCAL_RANK}', or init_distributed(backend='gloo') for CPUs",
        )
    model.to(device)
    # One seed per process, so that dropout differs between processes as it does between
    # the images of a batch; rank 0, and a single process, use config.seed itself.
    seed_everything(config.seed + info.rank)

    weight = None
    if config.class_weights is not None:
        weight = torch.tensor(config.class_weights, dtype=torch.float32, device=device)
    optimizer = make_optimizer(model, config)
    sampler: DistributedSampler | None = None
    images_per_process = len(train_set)  # type: ignore[arg-type]
    if info.distributed:
        sampler = DistributedSampler(
            train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True,
            seed=config.seed, drop_last=False,
        )
        images_per_process = len(sampler)  # ceil(len(train_set) / world_size)
    steps_per_epoch = math.ceil(images_per_process / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    factor = poly_schedule(total_steps, config.poly_power) if config.schedule == "poly" else (
        lambda step: 1.0
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "lr": [], "seconds": []}
    start_epoch = 0
    checkpoint_path = Path(out_dir) / "last.pt" if out_dir is not None else None

    if resume and checkpoint_path is not None and checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path, map_location=str(device))
        saved = {
            "config": TrainConfig.from_dict(state["config"]).to_dict(),
            "model_spec": state.get("model_spec"),
            "metadata": state.get("metadata"),
        }
        given = {"config": config.to_dict(), "model_spec": spec, "metadata": meta}
        saved_processes = int(state.get("world_size", 1))
        if saved_processes != info.world_size:
            raise ValueError(
                f"{where}: the run in {checkpoint_path} was trained by {saved_processes} "
                f"process(es), this one has {info.world_size}; the split of the data and the "
                "steps per epoch depend on it, so resume with the same number "
                f"(`torchrun --nproc_per_node={saved_processes} ...`, or no torchrun for 1), "
                "or start a new run in another out_dir"
            )
        changed = _differences(saved, given, "")
        if changed:
            raise fail(
                where, "config", f"the settings of the run being resumed ({checkpoint_path})",
                "different values for " + ", ".join(c.removeprefix("config.") for c in changed),
                "resume with the same settings, or start a new run in another out_dir",
            )
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        scheduler.load_state_dict(state["scheduler_state"])
        history = {k: list(v) for k, v in state["history"].items()}
        start_epoch = int(state["epoch"])
        _set_rng_state(state["rng_states"][info.rank] if info.distributed
                       else state["rng_state"])

    train_model: nn.Module = model
    if info.distributed:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
        )

    def validate(dataset: Dataset) -> dict[str, Any]:
        return evaluate(model, dataset, num_classes=num_classes,
                        batch_size=config.eval_batch_size, ignore_index=config.ignore_index,
                        boundary_widths=(config.boundary_width,), device=device)

    images_seen, train_seconds = 0, 0.0
    scores: dict[str, Any] = {}
    for epoch in range(start_epoch, config.epochs):
        if sampler is None:
            # A fresh shuffling generator per epoch, seeded by (seed, epoch), so that a
            # resumed run draws the same batches as an uninterrupted one.
            loader = _batches(train_set, config.batch_size, shuffle=True,
                              seed=config.seed * 100_003 + epoch, num_workers=config.num_workers)
        else:
            sampler.set_epoch(epoch)  # the sampler shuffles with (seed, epoch) too
            loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler,
                                num_workers=config.num_workers, drop_last=False)
        started = time.perf_counter()
        loss, seen = _train_one_epoch(train_model, loader, optimizer, scheduler, config, weight,
                                      device, progress and info.is_main, epoch,
                                      info.world_size)
        elapsed = time.perf_counter() - started
        if info.distributed:
            # The same history on every process: the mean loss over all processes' images,
            # the slowest process's time; and rank 0's batch-norm statistics everywhere.
            total, seen_everywhere = _reduce([loss * seen, float(seen)], device)
            loss, seen = total / max(seen_everywhere, 1.0), int(seen_everywhere)
            elapsed = _reduce([elapsed], device, op="max")[0]
            _broadcast_buffers(model)
        images_seen += seen
        train_seconds += elapsed
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(loss)
        # The head's rate; the backbone's is this times backbone_lr_scale.
        history["lr"].append(config.lr * factor(scheduler.last_epoch))
        history["seconds"].append(elapsed)
        if val_set is not None:
            scores = validate(val_set)
            for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
                history.setdefault(f"val_{key}", []).append(scores[key])
            history.setdefault("val_boundary_accuracy", []).append(
                scores["boundary_accuracy"][config.boundary_width])
        if checkpoint_path is not None:
            rng_states: list[Any] = [None] * info.world_size
            if info.distributed:
                # Every process's random numbers, for an exact resume of each.
                torch.distributed.all_gather_object(rng_states, _rng_state())
            if info.is_main:
                snapshot = {
                    "version": CHECKPOINT_VERSION,
                    "epoch": epoch + 1,
                    "model_state": model.state_dict(),
                    "optimizer_state": optimizer.state_dict(),
                    "scheduler_state": scheduler.state_dict(),
                    "rng_state": _rng_state(),
                    "history": history,
                    "config": config.to_dict(),
                    "model_spec": spec,
                    "metadata": meta,
                    "num_classes": num_classes,
                    "world_size": info.world_size,
                }
                if info.distributed:
                    snapshot["rng_states"] = rng_states
                save_checkpoint(checkpoint_path, snapshot)
            if info.distributed:
                torch.distributed.barrier()  # the others wait until the checkpoint is whole
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history)

    if val_set is not None and not scores:
        # A finished run resumed: nothing was trained, so score what was saved.
        scores = validate(val_set)
    return TrainResult(
        history=history,
        metrics=scores,
        epochs_run=config.epochs - start_epoch,
        seconds=train_seconds,
        images_per_second=images_seen / train_seconds if train_seconds else 0.0,
    )
