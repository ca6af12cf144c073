"""Synthetic shapes: the course's default data sets, generated on the fly from a seed.

Every image is a textured, noisy background (smooth colour fields, stripes, blobs of colour
that are not objects) with shapes drawn on it. The shapes are told apart by their *outline*,
never by their colour: each object's colour is drawn at random, independently of its class.
Three of the six classes have thin parts (the band of a ring, the arms of a cross and of an
ell) 6 to 10 pixels wide, and objects range from 16 to 80 pixels across (by default, at
128 x 128), so a network that predicts at 1/32 of the input resolution loses what one at 1/8
keeps.

The defaults were chosen with the benchmark (``fcn-course bench``): the segmentation
backgrounds are milder than the classification set's (weaker texture and noise, at most one
layer of distractor blobs) so that FCN-8s can learn the task within the benchmark's five
minutes of CPU training, while thin parts and small objects keep FCN-32s, -16s and -8s
clearly apart. Harder variants are one keyword away (``texture``, ``noise``,
``distractors``, ``thin_width``). The chapters
"Segmentation as dense prediction" and "Skip connections" show samples and explain why.

* :class:`ShapesSegmentation` returns ``(image, mask)`` pairs for FCN training.
* :class:`ShapesClassification` returns ``(image, label)`` pairs with one object per image:
  the course's own "ImageNet", on which the small VGG classifier is pre-trained before it
  is converted into an FCN (chapter "From classifier to fully convolutional network").

Item ``i`` of a split is drawn from a random generator seeded by ``(seed, data set kind,
split, i)``: it is the same however many images the data set holds and in whatever order
items are read, the three splits never share an image, and nothing is stored, so any
``num_images`` costs no memory. Images are float ``[0, 1]``; normalisation belongs to the
transforms (:mod:`fcn_course.data.transforms`), not to the data set.

Shapes are rendered from signed distance functions on the pixel grid: a pixel belongs to an
object when its centre lies inside the outline (no anti-aliasing, so masks are exact), and
the optional void band is the set of pixels within ``void_boundary`` pixels *outside* the
outline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fcn_course._validation import check_choice, check_int, describe, fail

__all__ = [
    "SHAPE_CLASSES",
    "SPLITS",
    "VOID_INDEX",
    "ShapeInstance",
    "ShapesClassification",
    "ShapesSegmentation",
]

SHAPE_CLASSES: tuple[str, ...] = ("disc", "square", "triangle", "ring", "cross", "ell")
"""The shape classes, in label order (segmentation adds "background" as label 0)."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

VOID_INDEX = 255
"""Mask value of pixels that carry no label (PASCAL VOC's convention); losses ignore it."""

# Independent random streams per data set kind and split.
_KIND_SEGMENTATION = 0
_KIND_CLASSIFICATION = 1
_SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}

_DEFAULT_SEGMENTATION_IMAGES = {"train": 1000, "val": 200, "test": 200}
_DEFAULT_CLASSIFICATION_IMAGES = {"train": 4000, "val": 500, "test": 500}


@dataclass(frozen=True)
class ShapeInstance:
    """One object drawn in an image, as returned by ``layout(index)``.

    ``center`` is ``(x, y)`` in pixels, ``size`` the diameter of the circle the shape fits
    in, ``angle`` its rotation in radians, ``thin_width`` the width of its thin parts (ring
    band, cross and ell arms) and ``pixels`` how many mask pixels carry its label once later
    objects and void bands have been drawn over it.
    """

    label: int
    shape: str
    center: tuple[float, float]
    size: float
    angle: float
    thin_width: float
    color: tuple[float, float, float]
    pixels: int


@dataclass(frozen=True)
class _Style:
    """The difficulty knobs shared by both data sets, already validated."""

    size_range: tuple[float, float]
    thin_width: tuple[float, float]
    noise: float
    texture: float
    distractors: tuple[int, int]


# ---------------------------------------------------------------------------------------
# Argument checks


def _check_range(
    where: str, name: str, value: Any, *, minimum: float, integer: bool, unit: str
) -> tuple[Any, Any]:
    """Return ``value`` as a ``(low, high)`` tuple with ``minimum <= low <= high``."""
    kind = "ints" if integer else "numbers"
    expected = f"a (low, high) pair of {kind} with {minimum} <= low <= high{unit}"
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise fail(where, name, expected, describe(value), "pass e.g. (2, 5)", error=TypeError)
    number = int if integer else (int, float)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, number):
            raise fail(where, name, expected, describe(value), "", error=TypeError)
    low, high = value
    if not minimum <= low <= high:
        raise fail(
            where, name, expected, repr(tuple(value)), "order the pair and raise the low end"
        )
    return (low, high) if integer else (float(low), float(high))


def _check_float(where: str, name: str, value: Any, *, minimum: float, maximum: float) -> float:
    """Return ``value`` as a float in ``[minimum, maximum]``."""
    expected = f"a number in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(where, name, expected, describe(value), "", error=TypeError)
    if not minimum <= value <= maximum:
        raise fail(where, name, expected, repr(value), "")
    return float(value)


def _check_transforms(where: str, transforms: Any) -> None:
    if transforms is not None and not callable(transforms):
        raise fail(
            where, "transforms", "a callable or None", describe(transforms),
            "pass e.g. fcn_course.data.train_transforms(crop_size=...)", error=TypeError,
        )


def _check_style(
    where: str,
    image_size: int,
    size_range: Any,
    thin_width: Any,
    noise: Any,
    texture: Any,
    distractors: Any,
) -> _Style:
    sizes = _check_range(where, "size_range", size_range, minimum=4, integer=False, unit=" pixels")
    if sizes[0] > image_size:
        raise fail(
            where, "size_range", f"a low end of at most image_size = {image_size}",
            repr(size_range), "shrink size_range or enlarge image_size",
        )
    return _Style(
        size_range=sizes,
        thin_width=_check_range(
            where, "thin_width", thin_width, minimum=1, integer=False, unit=" pixels"
        ),
        noise=_check_float(where, "noise", noise, minimum=0.0, maximum=1.0),
        texture=_check_float(where, "texture", texture, minimum=0.0, maximum=1.0),
        distractors=_check_range(
            where, "distractors", distractors, minimum=0, integer=True, unit=""
        ),
    )


def _item_index(where: str, index: Any, length: int) -> int:
    """Turn ``index`` into a position in ``range(length)``; IndexError ends iteration."""
    if isinstance(index, bool) or not hasattr(index, "__index__"):
        raise fail(where, "index", "an int", describe(index), "", error=TypeError)
    i = index.__index__()
    if not -length <= i < length:
        raise IndexError(f"{where}: index {i} is out of range for a data set of {length} images")
    return i % length


def _generator(kind: int, seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one item: a pure function of (seed, kind, split, index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, kind, _SPLIT_CODES[split], index]))


# ---------------------------------------------------------------------------------------
# Backgrounds


@lru_cache(maxsize=64)
def _interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of cubic B-spline interpolation from ``n_in >= 4`` knots.

    Cubic rather than linear so that thresholded fields have round, organic outlines: linear
    interpolation leaves corners on the grid lines, and blobs that look like squares or
    triangles would be background shapes labelled as background.
    """
    position = np.linspace(1.0, n_in - 2.0, n_out, endpoint=False)
    first = np.floor(position).astype(np.int64) - 1  # leftmost of the 4 knots that matter
    f = position - np.floor(position)
    weights = np.stack(
        [(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], axis=1
    ) / 6.0  # (n_out, 4)
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)[:, None]
    matrix[rows, first[:, None] + np.arange(4)] = weights
    return matrix


def _smooth_field(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Uniform noise on a ``cells x cells`` grid, interpolated smoothly to ``(size, size, C)``."""
    grid = rng.random((cells, cells * channels), dtype=np.float32)
    interp = _interpolation_matrix(size, cells)  # (S, cells)
    rows = (interp @ grid).reshape(size, cells, channels)  # (S, cells, C)
    return np.einsum("wj,hjc->hwc", interp, rows)  # (S, S, C)


def _background(rng: np.random.Generator, size: int, style: _Style) -> np.ndarray:
    """A cluttered background ``(S, S, 3)``: colour field, texture and distractor blobs."""
    base = rng.uniform(0.15, 0.85, size=3).astype(np.float32)
    low = _smooth_field(rng, size, int(rng.integers(4, 7)), 3)
    image = base + rng.uniform(0.2, 0.6) * (low - 0.5)

    # Fine texture: noise with a correlation length of a few pixels, like grass or gravel,
    # so that "uniform colour" alone does not say "object".
    fine_cells = max(4, size // int(rng.integers(3, 7)))
    fine = _smooth_field(rng, size, fine_cells, 1)
    image += 2.0 * style.texture * rng.uniform(0.3, 1.0) * (fine - 0.5)

    if rng.random() < 0.5:
        # Stripes of random orientation and period: long straight edges that are not objects.
        angle = rng.uniform(0.0, math.pi)
        period = rng.uniform(5.0, 20.0)
        coords = np.arange(size, dtype=np.float32)
        phase = (coords[None, :] * math.cos(angle) + coords[:, None] * math.sin(angle)) / period
        wave = np.sin(2.0 * math.pi * phase + rng.uniform(0.0, 2.0 * math.pi))  # (S, S)
        tint = rng.uniform(-1.0, 1.0, size=3).astype(np.float32)
        image += style.texture * rng.uniform(0.3, 1.0) * wave[:, :, None] * tint

    for _ in range(int(rng.integers(style.distractors[0], style.distractors[1] + 1))):
        # Blobs of colour with irregular outlines: the top of a smooth random field.
        field = _smooth_field(rng, size, int(rng.integers(5, 9)), 1)[:, :, 0]
        lo, hi = float(field.min()), float(field.max())
        blob = field > lo + rng.uniform(0.7, 0.85) * (hi - lo)
        color = rng.random(3, dtype=np.float32)
        alpha = rng.uniform(0.6, 1.0)
        image[blob] = (1.0 - alpha) * image[blob] + alpha * color
    return image


# ---------------------------------------------------------------------------------------
# Shapes as signed distance functions (negative inside, in pixels)


def _box(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    qu = np.abs(u) - half_u
    qv = np.abs(v) - half_v
    outside = np.hypot(np.maximum(qu, 0.0), np.maximum(qv, 0.0))
    return outside + np.minimum(np.maximum(qu, qv), 0.0)


def _triangle(u: np.ndarray, v: np.ndarray, half_side: float) -> np.ndarray:
    """Exact distance to an equilateral triangle centred on its centroid, apex at -v."""
    k = math.sqrt(3.0)
    px = np.abs(u) - half_side
    py = -v + half_side / k
    fold = px + k * py > 0.0
    px, py = (np.where(fold, (px - k * py) / 2.0, px), np.where(fold, (-k * px - py) / 2.0, py))
    px = px - np.clip(px, -2.0 * half_side, 0.0)
    return -np.hypot(px, py) * np.sign(py)


def _shape_sdf(
    shape: int, u: np.ndarray, v: np.ndarray, radius: float, width: float
) -> np.ndarray:
    """Signed distance to shape ``shape`` (index into SHAPE_CLASSES) of circumradius ``radius``.

    Thin parts are capped relative to the radius so that a small ring keeps its hole and a
    small cross keeps arms that stick out.
    """
    name = SHAPE_CLASSES[shape]
    if name == "disc":
        return np.hypot(u, v) - radius
    if name == "square":
        half = radius / math.sqrt(2.0)
        return _box(u, v, half, half)
    if name == "triangle":
        return _triangle(u, v, radius * math.sqrt(3.0) / 2.0)
    if name == "ring":
        band = min(width, 0.45 * radius)
        return np.abs(np.hypot(u, v) - (radius - band / 2.0)) - band / 2.0
    if name == "cross":
        half = min(width, 0.5 * radius) / 2.0
        return np.minimum(_box(u, v, radius, half), _box(u, v, half, radius))
    # ell: two arms of length 2a meeting at the corner (-a, a).
    a = radius / math.sqrt(2.0)
    arm = min(width, 0.6 * a)
    upright = _box(u + a - arm / 2.0, v, arm / 2.0, a)
    foot = _box(u, v - a + arm / 2.0, a, arm / 2.0)
    return np.minimum(upright, foot)


def _draw_object(
    rng: np.random.Generator,
    image: np.ndarray,
    labels: np.ndarray | None,
    owner: np.ndarray | None,
    *,
    shape: int,
    label: int,
    ident: int,
    center: tuple[float, float],
    size: float,
    style: _Style,
    void_boundary: int,
) -> ShapeInstance:
    """Draw one shape into ``image`` (and ``labels``/``owner``, when given) in place."""
    height, width = image.shape[:2]
    radius = size / 2.0
    angle = rng.uniform(0.0, 2.0 * math.pi)
    thin = rng.uniform(*style.thin_width)
    mirror = -1.0 if rng.random() < 0.5 else 1.0  # an ell and its mirror image are both "ell"
    cx, cy = center

    # Work on the object's bounding box only: a small object costs a few hundred pixels.
    reach = radius + void_boundary + 1.0
    x0, x1 = max(0, math.floor(cx - reach)), min(width, math.ceil(cx + reach) + 1)
    y0, y1 = max(0, math.floor(cy - reach)), min(height, math.ceil(cy + reach) + 1)
    candidates = rng.random((4, 3), dtype=np.float32)
    shade_angle = rng.uniform(0.0, 2.0 * math.pi)
    shade = rng.uniform(0.0, 0.25)
    if x0 >= x1 or y0 >= y1:
        return ShapeInstance(
            label, SHAPE_CLASSES[shape], (cx, cy), size, angle, thin,
            (float(candidates[0, 0]), float(candidates[0, 1]), float(candidates[0, 2])), 0,
        )

    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx  # (1, w)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy  # (h, 1)
    cos, sin = math.cos(angle), math.sin(angle)
    u = cos * dx + sin * dy  # (h, w) in the shape's own frame
    v = mirror * (-sin * dx + cos * dy)
    sdf = _shape_sdf(shape, u, v, radius, thin)
    inside = sdf <= 0.0

    # Colour is independent of the class; of a few random candidates take the one that
    # stands out most from what lies underneath, so that no object is invisible.
    patch = image[y0:y1, x0:x1]
    under = patch[inside].mean(axis=0) if inside.any() else patch.mean(axis=(0, 1))
    color = candidates[int(np.argmax(np.abs(candidates - under).sum(axis=1)))]
    gradient = (math.cos(shade_angle) * dx + math.sin(shade_angle) * dy) / max(radius, 1.0)
    shaded = color + (shade * gradient)[:, :, None]  # (h, w, 3)
    patch[inside] = shaded[inside]

    if labels is not None and owner is not None:
        label_patch = labels[y0:y1, x0:x1]
        owner_patch = owner[y0:y1, x0:x1]
        if void_boundary > 0:
            # Void goes outside this object's outline, so its thin parts keep their labelled
            # pixels; where the band crosses an object drawn earlier it voids those pixels.
            band = (sdf > 0.0) & (sdf <= void_boundary)
            label_patch[band] = VOID_INDEX
            owner_patch[band] = -1
        label_patch[inside] = label
        owner_patch[inside] = ident
    return ShapeInstance(
        label, SHAPE_CLASSES[shape], (cx, cy), size, angle, thin,
        (float(color[0]), float(color[1]), float(color[2])), int(inside.sum()),
    )


def _finish(image: np.ndarray, rng: np.random.Generator, style: _Style) -> torch.Tensor:
    """Add sensor noise, clip to [0, 1] and return a float32 ``(3, H, W)`` tensor."""
    if style.noise > 0.0:
        image += style.noise * rng.standard_normal(image.shape, dtype=np.float32)
    np.clip(image, 0.0, 1.0, out=image)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Log-uniform sizes: as many objects between 10 and 20 pixels as between 35 and 70."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


# ---------------------------------------------------------------------------------------
# Data sets


class ShapesSegmentation(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Seeded synthetic semantic segmentation: shapes on cluttered backgrounds.

    Each item is ``(image, mask)``: image float32 ``(3, H, W)`` in ``[0, 1]``, mask int64
    ``(H, W)`` with labels in ``range(num_classes)`` (0 = background) or 255 (void). The
    chapter "Segmentation as dense prediction" introduces it; "Skip connections" uses its
    thin parts and small objects to tell FCN-32s, -16s and -8s apart.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``; the three never share an image.
        num_images: length of the data set; default 1000 for train, 200 for val and test.
            Item ``i`` does not depend on it.
        image_size: side of the square images in pixels.
        seed: selects a different, equally hard data set.
        void_boundary: width in pixels of the void band (label 255) drawn just outside every
            object's outline, as PASCAL VOC marks object outlines; 0 turns it off. On by
            default (2) so that the ignore label of the loss and metrics has work to do.
        transforms: optional callable ``(image, mask) -> (image, mask)``, e.g.
            :func:`fcn_course.data.train_transforms`.
        objects_per_image: inclusive range of how many objects an image holds.
        size_range: object diameters in pixels, drawn log-uniformly (small ones as common
            as large ones); the low end sets how small the smallest objects are.
        thin_width: width in pixels of the thin parts (ring band, cross and ell arms); below
            the output stride of a coarse FCN these parts vanish from its prediction.
        noise: standard deviation of the Gaussian pixel noise added to the whole image.
        texture: strength of the background texture (fine noise and stripes).
        distractors: inclusive range of how many layers of colour blobs (not objects) the
            background gets.
    """

    def __init__(
        self,
        split: str,
        *,
        num_images: int | None = None,
        image_size: int = 128,
        seed: int = 0,
        void_boundary: int = 2,
        transforms: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        | None = None,
        objects_per_image: tuple[int, int] = (2, 5),
        size_range: tuple[float, float] = (16.0, 80.0),
        thin_width: tuple[float, float] = (6.0, 10.0),
        noise: float = 0.04,
        texture: float = 0.08,
        distractors: tuple[int, int] = (0, 1),
    ) -> None:
        where = "ShapesSegmentation()"
        self.split = check_choice(where, "split", split, SPLITS)
        if num_images is None:
            num_images = _DEFAULT_SEGMENTATION_IMAGES[split]
        self.num_images = check_int(
            where, "num_images", num_images, minimum=1, fix="pass how many images the split holds"
        )
        self.image_size = check_int(
            where, "image_size", image_size, minimum=16,
            fix="pass the image side in pixels, e.g. 128",
        )
        self.seed = check_int(where, "seed", seed, minimum=0)
        self.void_boundary = check_int(
            where, "void_boundary", void_boundary, minimum=0,
            fix="pass the band width in pixels, or 0 for no void band",
        )
        _check_transforms(where, transforms)
        self.transforms = transforms
        self.objects_per_image = _check_range(
            where, "objects_per_image", objects_per_image, minimum=1, integer=True, unit=""
        )
        self.style = _check_style(
            where, image_size, size_range, thin_width, noise, texture, distractors
        )
        self.classes: tuple[str, ...] = ("background", *SHAPE_CLASSES)
        from fcn_course.data.voc import voc_palette  # voc imports this module

        # The course's one palette (fcn_course.viz uses it too): PASCAL VOC's colours.
        self.palette = voc_palette(len(self.classes))  # (num_classes, 3)

    @property
    def num_classes(self) -> int:
        """Number of labels including background (void 255 is not a class)."""
        return len(self.classes)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = _item_index("ShapesSegmentation[]", index, self.num_images)
        image, mask, _ = self._render(i)
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask

    def layout(self, index: int) -> tuple[ShapeInstance, ...]:
        """The objects of item ``index`` in drawing order (later ones lie on top)."""
        return self._render(_item_index("ShapesSegmentation.layout()", index, self.num_images))[2]

    def _render(self, index: int) -> tuple[torch.Tensor, torch.Tensor, tuple[ShapeInstance, ...]]:
        rng = _generator(_KIND_SEGMENTATION, self.seed, self.split, index)
        size, style = self.image_size, self.style
        image = _background(rng, size, style)  # (S, S, 3)
        labels = np.zeros((size, size), dtype=np.uint8)
        owner = np.full((size, size), -1, dtype=np.int16)  # which object each label came from

        count = int(rng.integers(self.objects_per_image[0], self.objects_per_image[1] + 1))
        placed: list[tuple[float, float, float]] = []
        drawn: list[ShapeInstance] = []
        for ident in range(count):
            shape = int(rng.integers(len(SHAPE_CLASSES)))
            diameter = _log_uniform(rng, *style.size_range)
            # Keep most of the object in frame (a clipped ell is just a bar), and make a few
            # tries to keep centres apart: objects may overlap, but rarely hide each other.
            margin = min(0.85 * diameter / 2.0, size / 2.0)
            for _ in range(8):
                cx, cy = rng.uniform(margin, size - margin, size=2)
                if all(
                    math.hypot(cx - px, cy - py) >= 0.3 * (diameter + pd) for px, py, pd in placed
                ):
                    break
            placed.append((cx, cy, diameter))
            drawn.append(
                _draw_object(
                    rng, image, labels, owner, shape=shape, label=shape + 1, ident=ident,
                    center=(float(cx), float(cy)), size=diameter, style=style,
                    void_boundary=self.void_boundary,
                )
            )
        counts = np.bincount(owner[owner >= 0].ravel(), minlength=count)
        objects = tuple(replace(obj, pixels=int(counts[k])) for k, obj in enumerate(drawn))
        return _finish(image, rng, style), torch.from_numpy(labels.astype(np.int64)), objects

    def __repr__(self) -> str:
        return (
            f"ShapesSegmentation(split={self.split!r}, num_images={self.num_images}, "
            f"image_size={self.image_size}, seed={self.seed}, void_boundary={self.void_boundary})"
        )


class ShapesClassification(Dataset[tuple[torch.Tensor, int]]):
    """One shape per image, for pre-training the course's small VGG classifier.

    Each item is ``(image, label)``: image float32 ``(3, S, S)`` in ``[0, 1]`` and ``label``
    an int in ``range(len(SHAPE_CLASSES))`` (no background class). Objects are drawn by the
    same renderer over the same kind of background as :class:`ShapesSegmentation`, near the
    centre and at the scale of the segmentation set's medium objects, so the features the
    classifier learns carry over when it becomes an FCN (chapter "From classifier to fully
    convolutional network"). Classes are balanced: item ``i`` shows class ``i % 6``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``; the three never share an image.
        num_images: length of the data set; default 4000 for train, 500 for val and test.
        transforms: optional callable ``image -> image`` (e.g. a preset of
            :mod:`fcn_course.data.transforms`, which accepts an image alone).
        size_range, thin_width, noise, texture, distractors: as in
            :class:`ShapesSegmentation`; ``size_range`` defaults to 24-56 pixels.
    """

    def __init__(
        self,
        split: str,
        *,
        num_images: int | None = None,
        image_size: int = 96,
        seed: int = 0,
        transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        size_range: tuple[float, float] = (24.0, 56.0),
        thin_width: tuple[float, float] = (3.0, 6.0),
        noise: float = 0.06,
        texture: float = 0.15,
        distractors: tuple[int, int] = (1, 3),
    ) -> None:
        where = "ShapesClassification()"
        self.split = check_choice(where, "split", split, SPLITS)
        if num_images is None:
            num_images = _DEFAULT_CLASSIFICATION_IMAGES[split]
        self.num_images = check_int(
            where, "num_images", num_images, minimum=1, fix="pass how many images the split holds"
        )
        self.image_size = check_int(
            where, "image_size", image_size, minimum=16,
            fix="pass the image side in pixels, e.g. 96",
        )
        self.seed = check_int(where, "seed", seed, minimum=0)
        _check_transforms(where, transforms)
        self.transforms = transforms
        self.style = _check_style(
            where, image_size, size_range, thin_width, noise, texture, distractors
        )
        self.classes: tuple[str, ...] = SHAPE_CLASSES

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = _item_index("ShapesClassification[]", index, self.num_images)
        image, label, _ = self._render(i)
        if self.transforms is not None:
            image = self.transforms(image)
        return image, label

    def layout(self, index: int) -> tuple[ShapeInstance, ...]:
        """The single object of item ``index``, as a one-element tuple."""
        return self._render(_item_index("ShapesClassification.layout()", index, self.num_images))[2]

    def _render(self, index: int) -> tuple[torch.Tensor, int, tuple[ShapeInstance, ...]]:
        rng = _generator(_KIND_CLASSIFICATION, self.seed, self.split, index)
        size, style = self.image_size, self.style
        image = _background(rng, size, style)
        shape = index % len(SHAPE_CLASSES)
        diameter = _log_uniform(rng, *style.size_range)
        cx, cy = size / 2.0 + rng.uniform(-0.1, 0.1, size=2) * size
        obj = _draw_object(
            rng, image, None, None, shape=shape, label=shape, ident=0,
            center=(float(cx), float(cy)), size=diameter, style=style, void_boundary=0,
        )
        return _finish(image, rng, style), shape, (obj,)

    def __repr__(self) -> str:
        return (
            f"ShapesClassification(split={self.split!r}, num_images={self.num_images}, "
            f"image_size={self.image_size}, seed={self.seed})"
        )
