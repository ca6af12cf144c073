"""Pre-training the course classifier, the network that chapter 2 turns into an FCN.

The FCN paper starts from VGG16 trained on ImageNet. The course's stand-in is a small VGG
(:func:`fcn_course.models.course_vgg`) trained on :class:`fcn_course.data.ShapesClassification`,
one shape per image. Its convolutional layers then serve as the backbone of FCN-32s/16s/8s.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from fcn_course._validation import check_int, describe, fail
from fcn_course.train import _progress_bar, seed_everything

__all__ = ["ClassifierResult", "classifier_accuracy", "fit_classifier", "materialize"]


def materialize(dataset: Dataset, *, progress: bool = False) -> TensorDataset:
    """Render every item of a (lazily generated) data set once and keep the tensors.

    Training for many epochs then spends its time on the model, not on drawing shapes.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise fail("materialize()", "dataset", "a non-empty data set", "0 items", "")
    bar = _progress_bar(n, enabled=progress, desc="render")
    items = []
    for i in range(n):
        items.append(dataset[i])
        bar.update(1)
    bar.close()
    first, second = zip(*items, strict=True)
    images = torch.stack(list(first))
    targets = torch.stack([torch.as_tensor(t) for t in second])
    tensors = TensorDataset(images, targets)
    for attribute in ("classes", "num_classes", "palette"):
        if hasattr(dataset, attribute):
            setattr(tensors, attribute, getattr(dataset, attribute))
    return tensors


@dataclasses.dataclass
class ClassifierResult:
    """What :func:`fit_classifier` returns."""

    history: dict[str, list[float]]
    accuracy: float
    seconds: float


@torch.no_grad()
def classifier_accuracy(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 128, device: str = "cpu"
) -> float:
    """Top-1 accuracy of a classifier over a whole data set."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        pred = model(images.to(device)).argmax(1)
        correct += int((pred.cpu() == labels).sum())
        total += labels.numel()
    model.train(was_training)
    return correct / max(total, 1)


def fit_classifier(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ClassifierResult:
    """Train an image classifier with Adam and cross-entropy (cosine-annealed learning rate)."""
    where = "fit_classifier()"
    if not isinstance(model, nn.Module):
        raise fail(where, "model", "an nn.Module", describe(model), "", error=TypeError)
    check_int(where, "epochs", epochs, minimum=1)
    check_int(where, "batch_size", batch_size, minimum=1)
    generator = seed_everything(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(loader))
    history: dict[str, Any] = {"epoch": [], "train_loss": [], "val_accuracy": []}
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, seen = 0.0, 0
        bar = _progress_bar(len(loader), enabled=progress, desc=f"epoch {epoch + 1}")
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * labels.numel()
            seen += labels.numel()
            bar.update(1)
        bar.close()
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(total / seen)
        if val_set is not None:
            history["val_accuracy"].append(classifier_accuracy(model, val_set, device=str(device)))
    seconds = time.perf_counter() - started
    accuracy = history["val_accuracy"][-1] if val_set is not None else float("nan")
    return ClassifierResult(history=history, accuracy=accuracy, seconds=seconds)
