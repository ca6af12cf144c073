"""The pixel-wise cross-entropy loss of FCN training, and class weights for imbalanced data.

The book's chapter "Training with a pixel-wise loss" builds :func:`pixel_cross_entropy` from
``log_softmax`` and ``gather`` and compares it with ``torch.nn.functional.cross_entropy``;
it then uses :func:`class_weights_from_counts` to show what class balancing does to thin,
rare classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fcn_course._validation import check_choice, check_int, check_tensor, describe, fail

__all__ = [
    "class_weights_from_counts",
    "pixel_cross_entropy",
]

REDUCTIONS = ("mean", "sum", "none")
WEIGHTING_METHODS = ("inverse_frequency", "median_frequency")


def _format_values(values: torch.Tensor, limit: int = 8) -> str:
    """``{3, 7}`` for the distinct values of ``values``, cut after ``limit`` of them."""
    distinct = values.unique().tolist()
    shown = ", ".join(str(v) for v in distinct[:limit])
    if len(distinct) > limit:
        shown += f", ... ({len(distinct)} distinct values)"
    return "{" + shown + "}"


def check_labels(
    where: str,
    name: str,
    labels: torch.Tensor,
    num_classes: int,
    ignore_index: int,
) -> None:
    """Raise if ``labels`` holds a value outside ``range(num_classes)`` other than ``ignore_index``.

    Shared by the loss and the metrics: a label out of range would otherwise index a wrong
    row of the log-probabilities, or silently land in the wrong cell of a confusion matrix.
    """
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= num_classes))
    if not bool(bad.any()):
        return
    distinct = labels[bad].unique().tolist()
    if len(distinct) == 1:
        fix = (
            f"if {distinct[0]} marks void pixels pass ignore_index={distinct[0]}, "
            f"otherwise check num_classes"
        )
    else:
        fix = f"mark void pixels with ignore_index={ignore_index} or check num_classes"
    raise fail(
        where,
        name,
        f"labels in range({num_classes}) or ignore_index={ignore_index}",
        f"values {_format_values(labels[bad])}",
        fix,
    )


def _check_same_layout(
    where: str, logits: torch.Tensor, target: torch.Tensor, *, name: str = "target"
) -> None:
    """Raise if ``target`` ``(N, H, W)`` does not fit ``logits`` ``(N, C, H, W)``; name the dims."""
    expected = (logits.shape[0], logits.shape[2], logits.shape[3])
    got = tuple(target.shape)
    if got == expected:
        return
    differ = [
        f"{dim}: {e} vs {g}"
        for dim, e, g in zip(("N", "H", "W"), expected, got, strict=True)
        if e != g
    ]
    fix = "they must agree in " + ", ".join(differ)
    if got[0] == expected[0] and (got[1] != expected[1] or got[2] != expected[2]):
        fix += (
            "; the score map must be upsampled (and cropped) to the mask's size, e.g. "
            "F.interpolate(logits, size=target.shape[-2:], mode='bilinear')"
        )
    raise fail(
        where,
        name,
        f"shape (N, H, W) = {expected} to match logits {tuple(logits.shape)}",
        f"shape {got}",
        fix,
    )


def pixel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int = 255,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of every pixel's class scores against its label; equals ``F.cross_entropy``.

    Each pixel is a separate classification: ``loss = -w[y] * log_softmax(logits)[y]``,
    and pixels labelled ``ignore_index`` (void) contribute nothing, not even to the count.

    Args:
        logits: unnormalised class scores ``(N, C, H, W)``.
        target: integer labels ``(N, H, W)`` in ``range(C)`` or ``ignore_index``.
        weight: optional non-negative per-class weights ``(C,)``, e.g. from
            :func:`class_weights_from_counts`.
        reduction: ``"mean"`` divides by the summed weight of the non-ignored pixels
            (their number when ``weight`` is None), as torch does; ``"sum"`` is the FCN
            paper's unnormalised loss, which grows with the image size and is why the paper
            trained with a learning rate of 1e-10; ``"none"`` returns the ``(N, H, W)``
            per-pixel losses with zeros at ignored pixels.

    Returns:
        a scalar, or ``(N, H, W)`` for ``reduction="none"``. Like torch, ``"mean"`` is NaN
        when every pixel is ignored.

    Chapter: "Training with a pixel-wise loss".
    """
    where = "pixel_cross_entropy()"
    check_tensor(where, "logits", logits, ndim=4, shape_hint="(N, C, H, W)", floating=True)
    four_d = isinstance(target, torch.Tensor) and target.ndim == 4
    check_tensor(
        where, "target", target, ndim=3, shape_hint="(N, H, W)", floating=False,
        fix="for (N, 1, H, W) masks use target.squeeze(1); for one-hot targets target.argmax(1)"
        if four_d else "",
    )
    if target.dtype == torch.bool:
        raise fail(
            where, "target", "an integer tensor of class indices", describe(target),
            "call .long() on it", error=TypeError,
        )
    check_int(where, "ignore_index", ignore_index, fix="pass the label of void pixels, e.g. 255")
    check_choice(where, "reduction", reduction, REDUCTIONS)
    _check_same_layout(where, logits, target)
    num_classes = logits.shape[1]
    check_labels(where, "target", target, num_classes, ignore_index)
    if weight is not None:
        weight = _check_weight(where, weight, num_classes).to(logits.device, logits.dtype)

    target = target.long()
    valid = target != ignore_index  # (N, H, W)
    # Ignored pixels still need a legal index for gather; they are masked out below.
    safe_target = torch.where(valid, target, 0)
    log_probs = logits.log_softmax(dim=1)  # (N, C, H, W)
    nll = -log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)  # (N, H, W)
    pixel_weight = valid.to(logits.dtype) if weight is None else weight[safe_target] * valid
    # where() rather than a product, so an infinite loss at an ignored pixel cannot become NaN.
    losses = torch.where(valid, nll * pixel_weight, 0.0)  # (N, H, W)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / pixel_weight.sum()


def _check_weight(where: str, weight: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return ``weight`` if it is a finite, non-negative float tensor of ``num_classes`` values."""
    check_tensor(where, "weight", weight, ndim=1, shape_hint="(C,)", floating=True)
    if weight.shape[0] != num_classes:
        raise fail(
            where, "weight", f"one weight per class, C = logits.shape[1] = {num_classes}",
            describe(weight), "pass a (C,) tensor, e.g. class_weights_from_counts(counts)",
        )
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
        raise fail(
            where, "weight", "finite, non-negative class weights",
            f"{weight.tolist()}", "give a class weight 0 to leave it out of the loss",
        )
    return weight


def class_weights_from_counts(
    counts: torch.Tensor | Sequence[float] | Sequence[Sequence[float]],
    *,
    method: str = "inverse_frequency",
) -> torch.Tensor:
    """Per-class loss weights that up-weight rare classes, from pixel counts.

    With ``freq_c`` the frequency of class ``c``:

    - ``"inverse_frequency"``: ``w_c = 1 / (K * freq_c)``, ``K`` the number of classes
      that occur. A pixel's expected weight is then 1, so the loss keeps its scale.
    - ``"median_frequency"`` (Eigen & Fergus 2015, used by SegNet):
      ``w_c = median(freq) / freq_c``, the median taken over the classes that occur; the
      median class gets weight 1.

    Args:
        counts: pixel counts, either ``(C,)`` totals over the data set, where
            ``freq_c = counts[c] / counts.sum()``, or ``(num_images, C)`` counts per image,
            where ``freq_c`` is the number of pixels of class ``c`` divided by the number of
            pixels in the images that contain ``c`` (Eigen & Fergus's exact definition).
            Void pixels should not be counted.

    Returns:
        float32 ``(C,)`` weights; a class with no pixels gets weight 0 (it has nothing to
        balance and an infinite weight would break the loss).

    Chapter: "Training with a pixel-wise loss".
    """
    where = "class_weights_from_counts()"
    check_choice(where, "method", method, WEIGHTING_METHODS)
    if not isinstance(counts, torch.Tensor):
        try:
            counts = torch.as_tensor(counts, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise fail(
                where, "counts", "a (C,) or (num_images, C) array of pixel counts",
                describe(counts), "pass a list of numbers or a tensor", error=TypeError,
            ) from err
    check_tensor(where, "counts", counts, ndim=(1, 2), shape_hint="(C,) or (num_images, C)")
    if counts.dtype == torch.bool or counts.is_complex():
        raise fail(
            where, "counts", "real pixel counts", describe(counts), "call .long() on it",
            error=TypeError,
        )
    counts = counts.detach().to("cpu", torch.float64)
    if counts.numel() == 0:
        raise fail(where, "counts", "at least one class", describe(counts), "")
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise fail(
            where, "counts", "finite, non-negative pixel counts", f"{counts.tolist()}", ""
        )
    if counts.ndim == 1:
        class_pixels = counts  # (C,)
        seen_pixels = counts.sum().expand_as(counts)  # (C,)
    else:
        class_pixels = counts.sum(0)  # (C,)
        image_pixels = counts.sum(1, keepdim=True)  # (num_images, 1)
        # Only the images where a class occurs count towards its frequency's denominator.
        seen_pixels = ((counts > 0) * image_pixels).sum(0)  # (C,)
    present = class_pixels > 0
    if not bool(present.any()):
        raise fail(
            where, "counts", "at least one class with pixels", "all zeros",
            "count the labels of the training masks (void excluded)",
        )
    freq = torch.zeros_like(class_pixels)
    freq[present] = class_pixels[present] / seen_pixels[present]
    weights = torch.zeros_like(class_pixels)
    if method == "inverse_frequency":
        weights[present] = 1.0 / (int(present.sum()) * freq[present])
    else:
        # quantile(0.5) averages the two middle values for an even count, like numpy.median.
        weights[present] = torch.quantile(freq[present], 0.5) / freq[present]
    return weights.to(torch.float32)
