"""Segmentation metrics: the FCN paper's four scores from a confusion matrix, and more.

The book's chapter "Evaluation" defines, with ``n_ij`` the number of pixels of class ``i``
predicted as class ``j`` and ``t_i = sum_j n_ij`` the number of pixels of class ``i``:

- pixel accuracy ``sum_i n_ii / sum_i t_i``
- mean accuracy ``(1/n_cl) sum_i n_ii / t_i``
- mean IU ``(1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)``
- frequency-weighted IU ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``

:class:`ConfusionMatrix` accumulates ``n_ij`` over a whole data set (as the paper scores it)
and computes all four; :func:`per_image_mean_iou` scores images one by one, which the
chapter uses to show that the two averages differ; :func:`boundary_accuracy` and
:class:`TrimapAccuracy` measure accuracy near object boundaries, DeepLab's "trimap".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from fcn_course._validation import check_int, check_tensor, describe, fail
from fcn_course.losses import check_labels

__all__ = [
    "ConfusionMatrix",
    "TrimapAccuracy",
    "boundary_accuracy",
    "per_image_mean_iou",
    "trimap_band",
]


def _check_target(where: str, target: torch.Tensor) -> torch.Tensor:
    """Return ``target`` if it is an integer ``(N, H, W)`` label map."""
    four_d = isinstance(target, torch.Tensor) and target.ndim == 4
    check_tensor(
        where, "target", target, ndim=3, shape_hint="(N, H, W)", floating=False,
        fix="for (N, 1, H, W) masks use target.squeeze(1)" if four_d else "",
    )
    if target.dtype == torch.bool:
        raise fail(
            where, "target", "an integer tensor of class indices", describe(target),
            "call .long() on it", error=TypeError,
        )
    return target


def _pred_labels(
    where: str, pred: torch.Tensor, target: torch.Tensor, num_classes: int | None
) -> torch.Tensor:
    """Predicted labels ``(N, H, W)`` from ``pred``: labels as they are, logits by argmax.

    A floating ``(N, C, H, W)`` tensor is read as class scores; an integer ``(N, H, W)``
    tensor as labels. ``num_classes`` (when known) is checked against both.
    """
    check_tensor(
        where, "pred", pred, ndim=(3, 4), shape_hint="(N, H, W) labels or (N, C, H, W) logits"
    )
    if pred.ndim == 4:
        check_tensor(
            where, "pred", pred, floating=True,
            fix="4-d predictions are read as class scores (N, C, H, W); pass labels as (N, H, W)",
        )
        if num_classes is not None and pred.shape[1] != num_classes:
            raise fail(
                where, "pred", f"{num_classes} class scores in dim 1 (N, C, H, W)",
                describe(pred), "the model's num_classes must match the metric's",
            )
        labels = pred.argmax(dim=1)  # (N, H, W)
    else:
        if pred.is_floating_point() or pred.is_complex() or pred.dtype == torch.bool:
            raise fail(
                where, "pred", "integer labels (N, H, W) or floating logits (N, C, H, W)",
                describe(pred), "call .long() on labels, or pass the logits before argmax",
                error=TypeError,
            )
        labels = pred
    if tuple(labels.shape) != tuple(target.shape):
        differ = [
            f"{dim}: {p} vs {t}"
            for dim, p, t in zip(("N", "H", "W"), labels.shape, target.shape, strict=True)
            if p != t
        ]
        raise fail(
            where, "pred",
            f"predictions of the target's shape (N, H, W) = {tuple(target.shape)}",
            describe(pred), "they differ in " + ", ".join(differ),
        )
    if num_classes is not None and pred.ndim == 3:
        bad = (labels < 0) | (labels >= num_classes)
        if bool(bad.any()):
            values = sorted(labels[bad].unique().tolist())
            raise fail(
                where, "pred", f"labels in range({num_classes})", f"values {set(values)}",
                "a prediction is never void; check num_classes or the argmax dimension",
            )
    return labels


def _confusion_counts(
    labels: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int
) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts, rows = ground truth, columns = prediction."""
    valid = target != ignore_index
    # One bincount does the whole matrix: cell (i, j) has the flat index n * i + j.
    flat = num_classes * target[valid].long() + labels[valid].long()
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _scores(matrix: torch.Tensor) -> dict[str, torch.Tensor]:
    """The FCN paper's metrics of an ``(..., n, n)`` confusion matrix, batched over leading dims.

    Per-class values are NaN where undefined: accuracy for classes with no ground-truth
    pixels (``t_i = 0``), IU for classes in neither ground truth nor prediction.
    NaN entries are left out of the means.
    """
    n = matrix.double()
    hits = n.diagonal(dim1=-2, dim2=-1)  # n_ii, (..., n)
    truth = n.sum(-1)  # t_i, (..., n)
    predicted = n.sum(-2)  # sum_j n_ji, (..., n)
    union = truth + predicted - hits
    nan = torch.tensor(math.nan, dtype=torch.float64, device=n.device)
    accuracy = torch.where(truth > 0, hits / truth, nan)
    iou = torch.where(union > 0, hits / union, nan)
    total = truth.sum(-1)  # (...)
    pixel_accuracy = torch.where(total > 0, hits.sum(-1) / total, nan)
    # A class predicted but absent from the ground truth has t_i = 0: no weight in f.w. IU.
    fw_iou = torch.where(
        total > 0, torch.where(truth > 0, truth * iou, 0.0).sum(-1) / total, nan
    )
    return {
        "pixel_accuracy": pixel_accuracy,
        "mean_accuracy": accuracy.nanmean(-1),
        "mean_iou": iou.nanmean(-1),
        "fw_iou": fw_iou,
        "iou": iou,
        "accuracy": accuracy,
    }


class ConfusionMatrix:
    """Accumulates a segmentation confusion matrix over a data set and scores it.

    ``matrix[i, j]`` counts the pixels whose ground truth is class ``i`` (row) and whose
    prediction is class ``j`` (column); pixels labelled ``ignore_index`` are not counted.

    :meth:`compute` returns the FCN paper's four metrics as floats, plus per-class ``iou``
    and ``accuracy`` as lists of floats with NaN where a class's value is undefined:

    - a class absent from both ground truth and prediction has NaN IU and NaN accuracy and
      is left out of every mean (``n_cl`` counts only the classes that occur);
    - a class absent from the ground truth but predicted has IU 0 (its false positives are
      real errors, so it counts in mean IU) but NaN accuracy (``n_ii / t_i`` is ``0 / 0``),
      so it is left out of mean accuracy; its false positives lower the accuracy of the
      classes whose pixels they took. This matches the FCN authors' ``score.py``.

    All metrics are NaN before any pixel has been counted.

    Chapter: "Evaluation".
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        *,
        class_names: Sequence[str] | None = None,
    ) -> None:
        where = "ConfusionMatrix()"
        check_int(where, "num_classes", num_classes, minimum=1)
        check_int(
            where, "ignore_index", ignore_index, fix="pass the label of void pixels, e.g. 255"
        )
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
                raise fail(
                    where, "class_names", "a sequence of strings", describe(class_names), "",
                    error=TypeError,
                )
            if len(class_names) != num_classes:
                raise fail(
                    where, "class_names", f"{num_classes} names (one per class)",
                    f"{len(class_names)} names", "give one name per class, background included",
                )
            class_names = list(class_names)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names: list[str] | None = class_names
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: predicted labels ``(N, H, W)`` or logits ``(N, C, H, W)``, and targets."""
        where = "ConfusionMatrix.update()"
        _check_target(where, target)
        labels = _pred_labels(where, pred, target, self.num_classes)
        check_labels(where, "target", target, self.num_classes, self.ignore_index)
        counts = _confusion_counts(labels, target, self.num_classes, self.ignore_index)
        # Follow the data's device so that a GPU evaluation loop never waits on a copy.
        if self.matrix.device != counts.device:
            self.matrix = self.matrix.to(counts.device)
        self.matrix += counts

    def reset(self) -> None:
        """Zero the counts, e.g. at the start of each evaluation pass."""
        self.matrix.zero_()

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add ``other``'s counts to this matrix (in place) and return ``self``."""
        if not isinstance(other, ConfusionMatrix):
            raise fail(
                "ConfusionMatrix.merge()", "other", "a ConfusionMatrix", describe(other), "",
                error=TypeError,
            )
        if other.num_classes != self.num_classes:
            raise fail(
                "ConfusionMatrix.merge()", "other", f"num_classes={self.num_classes}",
                f"num_classes={other.num_classes}", "only matrices of the same classes add up",
            )
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the counts over all processes of ``torch.distributed``; a no-op when not initialised.

        Every process must call it. With the NCCL backend the matrix must be on the GPU,
        which it is once :meth:`update` has seen GPU tensors.
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.matrix)
        return self

    def compute(self) -> dict[str, float | list[float]]:
        """The FCN paper's metrics: ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou``.

        Also per-class ``iou`` and ``accuracy`` (lists of floats, NaN where undefined; see the
        class docstring for which classes count in the means). Values are fractions in [0, 1].
        """
        scores = _scores(self.matrix.cpu())
        return {
            name: value.tolist() if value.ndim else float(value)
            for name, value in scores.items()
        }

    def __str__(self) -> str:
        scores = self.compute()
        names = self.class_names or [f"class {i}" for i in range(self.num_classes)]
        truth = self.matrix.sum(1).tolist()
        width = max(len("class"), *(len(name) for name in names))

        def percent(value: float) -> str:
            return "   -" if math.isnan(value) else f"{100 * value:5.1f}"

        lines = [f"{'class':<{width}}    IoU    acc     pixels"]
        rows = zip(names, scores["iou"], scores["accuracy"], truth, strict=True)
        for name, iou, acc, count in rows:
            lines.append(f"{name:<{width}}  {percent(iou):>5}  {percent(acc):>5}  {count:>9}")
        lines.append(
            f"pixel acc {percent(scores['pixel_accuracy']).strip()}  "
            f"mean acc {percent(scores['mean_accuracy']).strip()}  "
            f"mean IoU {percent(scores['mean_iou']).strip()}  "
            f"f.w. IoU {percent(scores['fw_iou']).strip()}  (%)"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self.matrix.sum())})"
        )


def per_image_mean_iou(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Mean IU of each image on its own: float64 ``(N,)``, NaN for an image with no labelled pixels.

    Within an image, classes absent from both its ground truth and its prediction are left
    out of its mean (the :class:`ConfusionMatrix` rule). Averaging these values weights every
    image equally, so it is not the data-set mean IU the FCN paper reports, which pools the
    pixels of all images first; the chapter "Evaluation" compares the two.
    """
    where = "per_image_mean_iou()"
    check_int(where, "num_classes", num_classes, minimum=1)
    check_int(where, "ignore_index", ignore_index)
    _check_target(where, target)
    labels = _pred_labels(where, pred, target, num_classes)
    check_labels(where, "target", target, num_classes, ignore_index)
    n_images = target.shape[0]
    valid = target != ignore_index
    image = torch.arange(n_images, device=target.device).view(-1, 1, 1).expand_as(target)
    # The bincount trick with the image index as a third digit: one matrix per image.
    flat = (image[valid] * num_classes + target[valid].long()) * num_classes + labels[valid].long()
    counts = torch.bincount(flat, minlength=n_images * num_classes * num_classes)
    matrices = counts.reshape(n_images, num_classes, num_classes)
    return _scores(matrices.cpu())["mean_iou"]


def trimap_band(target: torch.Tensor, *, width: int, ignore_index: int = 255) -> torch.Tensor:
    """Boolean ``(N, H, W)`` band of pixels within ``width`` of a ground-truth label boundary.

    A labelled pixel is in the band when some labelled pixel of another class lies within
    ``width`` pixels of it in both directions (a ``(2 width + 1)``-square window). The
    window's largest and smallest label come from a max-pool and a min-pool of the label
    map, with void pixels made neutral so that they neither create a boundary nor join
    the band; the image border is not a boundary.

    Chapter: "Evaluation" (DeepLab's trimap experiment).
    """
    where = "trimap_band()"
    check_int(where, "width", width, minimum=1, fix="pass the band's half-width in pixels")
    check_int(where, "ignore_index", ignore_index)
    _check_target(where, target)
    valid = target != ignore_index
    labels = target.float().unsqueeze(1)  # (N, 1, H, W)
    mask = valid.unsqueeze(1)
    lowest = float(target.min()) - 1 if target.numel() else -1.0
    highest = float(target.max()) + 1 if target.numel() else 1.0
    size = 2 * width + 1
    # max_pool pads with -inf, so pixels beyond the border never enter a window.
    window_max = F.max_pool2d(
        torch.where(mask, labels, lowest), size, stride=1, padding=width
    )
    window_min = -F.max_pool2d(
        -torch.where(mask, labels, highest), size, stride=1, padding=width
    )
    return valid & (window_max != window_min).squeeze(1)


class TrimapAccuracy:
    """Pixel accuracy within bands of several widths around label boundaries, over a data set.

    ``compute()`` returns ``{width: accuracy}`` (NaN for a width whose band is still empty);
    the chapter "Evaluation" plots it against the width, as DeepLab does.
    """

    def __init__(self, widths: int | Sequence[int], ignore_index: int = 255) -> None:
        where = "TrimapAccuracy()"
        if isinstance(widths, int):
            widths = [widths]
        if isinstance(widths, str) or not isinstance(widths, Sequence) or not widths:
            raise fail(
                where, "widths", "an int or a non-empty sequence of ints", describe(widths),
                "e.g. widths=[1, 2, 4, 8]", error=TypeError,
            )
        for width in widths:
            check_int(where, "widths", width, minimum=1, fix="band widths are pixels, >= 1")
        check_int(where, "ignore_index", ignore_index)
        self.widths = list(widths)
        self.ignore_index = ignore_index
        self.correct = torch.zeros(len(self.widths), dtype=torch.int64)
        self.total = torch.zeros(len(self.widths), dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: predicted labels ``(N, H, W)`` or logits ``(N, C, H, W)``, and targets."""
        where = "TrimapAccuracy.update()"
        _check_target(where, target)
        labels = _pred_labels(where, pred, target, None)
        hit = labels == target
        for k, width in enumerate(self.widths):
            band = trimap_band(target, width=width, ignore_index=self.ignore_index)
            self.correct[k] += int((hit & band).sum())
            self.total[k] += int(band.sum())

    def reset(self) -> None:
        """Zero the counts."""
        self.correct.zero_()
        self.total.zero_()

    def all_reduce(self) -> TrimapAccuracy:
        """Sum the counts over all processes of ``torch.distributed``; a no-op when not initialised.

        Every process must call it. The counts stay on the CPU; with the NCCL backend they
        travel through the process's current GPU.
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            counts = torch.stack([self.correct, self.total])  # (2, len(widths))
            if torch.distributed.get_backend() == "nccl":
                counts = counts.cuda()
            torch.distributed.all_reduce(counts)
            counts = counts.cpu()
            self.correct, self.total = counts[0].clone(), counts[1].clone()
        return self

    def compute(self) -> dict[int, float]:
        """``{width: pixel accuracy within the band}``, NaN where the band is empty."""
        return {
            width: float(c) / float(t) if t else math.nan
            for width, c, t in zip(
                self.widths, self.correct.tolist(), self.total.tolist(), strict=True
            )
        }


def boundary_accuracy(
    pred: torch.Tensor, target: torch.Tensor, *, width: int, ignore_index: int = 255
) -> float:
    """Pixel accuracy within ``width`` pixels of ground-truth label boundaries (DeepLab's trimap).

    ``pred`` is labels ``(N, H, W)`` or logits ``(N, C, H, W)``; the band is
    :func:`trimap_band`, pooled over all images. NaN when the band is empty.

    Chapter: "Evaluation".
    """
    check_int(
        "boundary_accuracy()", "width", width, minimum=1,
        fix="pass the band's half-width in pixels",
    )
    meter = TrimapAccuracy(width, ignore_index)
    meter.update(pred, target)
    return meter.compute()[width]
