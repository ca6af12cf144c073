"""Joint image/mask transforms for segmentation, built on ``torchvision.transforms.v2``.

A geometric transform must move the mask exactly as it moves the image, or the labels no
longer sit on the pixels they describe. ``transforms.v2`` does this when the image is wrapped
as ``tv_tensors.Image`` and the mask as ``tv_tensors.Mask``: one random draw serves both, the
mask is always resized with NEAREST (interpolating labels would invent classes between two
neighbours) and padding can fill the mask with the void label 255 while the image gets 0.
The chapter "Training" explains the presets; the torchvision segmentation references use the
same recipe.

Where normalisation lives: data sets return images in ``[0, 1]``; a preset given ``mean``
and ``std`` normalises as its last step, and models take whatever the transforms produce.
The course's own networks train on ``[0, 1]`` images (no normalisation needed); torchvision's
pretrained backbones expect ImageNet statistics, so pass ``mean=IMAGENET_MEAN,
std=IMAGENET_STD`` for those, and :func:`denormalize` before showing an image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from fcn_course._validation import check_int, check_tensor, describe, fail
from fcn_course.data.shapes import VOID_INDEX

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Normalize",
    "PairTransform",
    "RandomScale",
    "compute_mean_std",
    "denormalize",
    "eval_transforms",
    "train_transforms",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _check_stats(where: str, mean: Any, std: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Validate a (mean, std) pair of per-channel sequences of equal length, std > 0."""
    values = []
    for name, value in (("mean", mean), ("std", std)):
        if (
            not isinstance(value, Sequence)
            or isinstance(value, str)
            or len(value) == 0
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise fail(where, name, "a sequence of per-channel numbers, e.g. IMAGENET_MEAN",
                       describe(value), "", error=TypeError)
        values.append(tuple(float(v) for v in value))
    if len(values[0]) != len(values[1]):
        raise fail(where, "std", f"{len(values[0])} values, one per channel of mean",
                   repr(values[1]), "")
    if not all(s > 0 for s in values[1]):
        raise fail(where, "std", "positive values", repr(values[1]),
                   "a channel with std 0 is constant; compute std with compute_mean_std()")
    return values[0], values[1]


def _check_pair(where: str, image: Any, mask: Any) -> None:
    check_tensor(where, "image", image, ndim=3, shape_hint="(C, H, W)", floating=True,
                 fix="data sets of fcn_course return float images; call .float() / 255 on uint8")
    if mask is None:
        return
    check_tensor(where, "mask", mask, ndim=2, shape_hint="(H, W)", floating=False)
    if mask.shape != image.shape[1:]:
        raise fail(where, "mask", f"shape {tuple(image.shape[1:])} (the image's H, W)",
                   describe(mask), "an image and its mask must match pixel for pixel")


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale_range`` (images bilinear, masks NEAREST).

    The factor is relative to each input's own size, so one preset serves images of any size
    (VOC's vary); ``torch.manual_seed`` makes the draw reproducible like every v2 transform.
    """

    def __init__(self, scale_range: tuple[float, float] = (0.5, 2.0)) -> None:
        super().__init__()
        self.scale_range = _check_scale_range("RandomScale()", scale_range)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        low, high = self.scale_range
        scale = low + (high - low) * torch.rand(()).item()
        size = [max(1, round(height * scale)), max(1, round(width * scale))]
        return {"size": size}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        # For a tv_tensors.Mask the resize kernel ignores BILINEAR and uses NEAREST.
        return self._call_kernel(
            F.resize, inpt, size=params["size"], interpolation=v2.InterpolationMode.BILINEAR,
            antialias=True,
        )

    def extra_repr(self) -> str:
        return f"scale_range={self.scale_range}"


def _check_scale_range(where: str, scale_range: Any) -> tuple[float, float]:
    expected = "a (low, high) pair of numbers with 0 < low <= high"
    if (
        not isinstance(scale_range, Sequence)
        or isinstance(scale_range, str)
        or len(scale_range) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale_range)
    ):
        raise fail(where, "scale_range", expected, describe(scale_range), "pass e.g. (0.5, 2.0)",
                   error=TypeError)
    low, high = float(scale_range[0]), float(scale_range[1])
    if not (0 < low <= high and math.isfinite(high)):
        raise fail(where, "scale_range", expected, repr(tuple(scale_range)), "pass e.g. (0.5, 2.0)")
    return low, high


class PairTransform:
    """Apply v2 transforms jointly to ``(image, mask)``, in and out in the data set contract.

    Takes a float image ``(C, H, W)`` and an integer mask ``(H, W)``, wraps them as
    ``tv_tensors.Image`` and ``tv_tensors.Mask`` so that every step treats each as it should,
    and returns plain tensors (float image, int64 mask). Called with an image alone (as
    :class:`~fcn_course.data.ShapesClassification` does) it returns the image alone.
    """

    def __init__(self, *steps: Callable[..., Any]) -> None:
        for k, step in enumerate(steps):
            if not callable(step):
                raise fail(f"{type(self).__name__}()", f"steps[{k}]", "a v2 transform (callable)",
                           describe(step), "", error=TypeError)
        self.steps = tuple(steps)
        self.pipeline = v2.Compose(list(steps)) if steps else v2.Identity()

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        where = f"{type(self).__name__}.__call__()"
        _check_pair(where, image, mask)
        if mask is None:
            out = self.pipeline(tv_tensors.Image(image))
            return out.as_subclass(torch.Tensor)
        out_image, out_mask = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor).long()

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {step!r}" for step in self.steps)
        return f"{type(self).__name__}(\n{inner}\n)" if self.steps else f"{type(self).__name__}()"


class Normalize(PairTransform):
    """Subtract ``mean`` and divide by ``std`` per channel; the mask passes through unchanged."""

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.mean, self.std = _check_stats("Normalize()", mean, std)
        super().__init__(v2.Normalize(self.mean, self.std))


def denormalize(
    image: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Undo :class:`Normalize` (``image * std + mean``) on ``(C, H, W)`` or ``(N, C, H, W)``."""
    where = "denormalize()"
    check_tensor(where, "image", image, ndim=(3, 4), shape_hint="(C, H, W) or (N, C, H, W)",
                 floating=True)
    mean_t, std_t = _check_stats(where, mean, std)
    if image.shape[-3] != len(mean_t):
        raise fail(where, "image", f"{len(mean_t)} channels (one per mean value)",
                   describe(image), "")
    m = torch.tensor(mean_t, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    s = torch.tensor(std_t, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return image * s + m


def _size_pair(where: str, name: str, value: Any) -> list[int]:
    """``int`` or ``(height, width)`` of positive ints, as ``[height, width]``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise fail(where, name, "an int or a (height, width) pair", describe(value), "",
                       error=TypeError)
        return [check_int(where, name, v, minimum=1) for v in value]
    size = check_int(where, name, value, minimum=1, fix="pass the side in pixels")
    return [size, size]


def _normalize_step(where: str, mean: Any, std: Any) -> list[v2.Transform]:
    if mean is None and std is None:
        return []
    if mean is None or std is None:
        missing = "mean" if mean is None else "std"
        raise fail(where, missing, "a per-channel sequence when the other is given",
                   "None", "pass both mean and std (e.g. IMAGENET_MEAN, IMAGENET_STD) or neither")
    return [v2.Normalize(*_check_stats(where, mean, std))]


def train_transforms(
    crop_size: int | tuple[int, int],
    *,
    scale_range: tuple[float, float] | None = (0.5, 2.0),
    hflip_prob: float = 0.5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> PairTransform:
    """The training preset: random scale, random crop, horizontal flip, optional normalisation.

    The crop pads what falls outside the scaled image with 0 in the image and the void
    label 255 in the mask, so padding is never learnt as background.

    Args:
        crop_size: side (or ``(height, width)``) of the crops; batches need equal sizes.
        scale_range: the random scale factor's range; ``None`` skips scaling.
        hflip_prob: probability of a horizontal flip (0 turns flips off).
        mean, std: per-channel statistics to normalise with; both ``None`` leaves ``[0, 1]``.
    """
    where = "train_transforms()"
    size = _size_pair(where, "crop_size", crop_size)
    if isinstance(hflip_prob, bool) or not isinstance(hflip_prob, int | float):
        raise fail(where, "hflip_prob", "a probability in [0, 1]", describe(hflip_prob), "",
                   error=TypeError)
    if not 0.0 <= hflip_prob <= 1.0:
        raise fail(where, "hflip_prob", "a probability in [0, 1]", repr(hflip_prob), "")
    steps: list[v2.Transform] = []
    if scale_range is not None:
        steps.append(RandomScale(_check_scale_range(where, scale_range)))
    steps.append(
        v2.RandomCrop(
            size, pad_if_needed=True,
            fill={tv_tensors.Image: 0.0, tv_tensors.Mask: VOID_INDEX}, padding_mode="constant",
        )
    )
    if hflip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=float(hflip_prob)))
    steps += _normalize_step(where, mean, std)
    return PairTransform(*steps)


def eval_transforms(
    *,
    size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> PairTransform:
    """The evaluation preset: optional resize (masks NEAREST) and optional normalisation.

    FCNs take any input size, so by default images are evaluated at their own resolution;
    ``size`` (an int resizes the shorter side, as ``v2.Resize``) is for batching or speed.
    """
    where = "eval_transforms()"
    steps: list[v2.Transform] = []
    if size is not None:
        if isinstance(size, Sequence) and not isinstance(size, str):
            steps.append(v2.Resize(_size_pair(where, "size", size), antialias=True))
        else:
            steps.append(v2.Resize(check_int(where, "size", size, minimum=1), antialias=True))
    steps += _normalize_step(where, mean, std)
    return PairTransform(*steps)


def compute_mean_std(
    dataset: Dataset[Any], *, num_samples: int | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of a data set's images, over all pixels.

    Reads items ``0 .. num_samples - 1`` (all by default); an item is an image tensor or a
    tuple whose first element is one (``(image, mask)``, ``(image, label)``). Use it on a
    data set *without* normalising transforms, and pass the result to a preset.
    """
    where = "compute_mean_std()"
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise fail(where, "dataset", "a map-style data set (with __len__ and __getitem__)",
                   describe(dataset), "", error=TypeError)
    total = len(dataset)
    count = total
    if num_samples is not None:
        count = min(total, check_int(where, "num_samples", num_samples, minimum=1))
    if count == 0:
        raise fail(where, "dataset", "at least one item", "an empty data set", "")
    sums = sq_sums = None
    pixels = 0
    for i in range(count):
        item = dataset[i]
        image = item[0] if isinstance(item, tuple | list) else item
        check_tensor(where, f"dataset[{i}] image", image, ndim=3, shape_hint="(C, H, W)",
                     floating=True)
        flat = image.detach().to(torch.float64).flatten(1)  # (C, H * W)
        if sums is None:
            sums, sq_sums = flat.sum(1), (flat * flat).sum(1)
        elif flat.shape[0] != sums.shape[0]:
            raise fail(where, f"dataset[{i}] image", f"{sums.shape[0]} channels like item 0",
                       describe(image), "")
        else:
            sums += flat.sum(1)
            sq_sums += (flat * flat).sum(1)
        pixels += flat.shape[1]
    mean = sums / pixels
    std = (sq_sums / pixels - mean * mean).clamp_min(0.0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
