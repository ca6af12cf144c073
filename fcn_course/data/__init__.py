"""Data sets and transforms: the synthetic shapes (default, no download) and PASCAL VOC.

Every segmentation data set returns ``(image, mask)``: image float32 ``(3, H, W)`` in
``[0, 1]``, mask int64 ``(H, W)`` with class labels or ``VOID_INDEX`` (255). Normalisation
is a step of the transform presets, not of the data sets. Colouring masks for display lives
in :mod:`fcn_course.viz`; the data sets only provide their ``palette``.
"""

from __future__ import annotations

from fcn_course.data.shapes import (
    SHAPE_CLASSES,
    SPLITS,
    VOID_INDEX,
    ShapeInstance,
    ShapesClassification,
    ShapesSegmentation,
)
from fcn_course.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalize,
    PairTransform,
    RandomScale,
    compute_mean_std,
    denormalize,
    eval_transforms,
    train_transforms,
)
from fcn_course.data.voc import (
    VOC_CLASSES,
    VOC_VOID_COLOR,
    VOCSegmentation,
    voc_mask_to_labels,
    voc_palette,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SHAPE_CLASSES",
    "SPLITS",
    "VOC_CLASSES",
    "VOC_VOID_COLOR",
    "VOID_INDEX",
    "Normalize",
    "PairTransform",
    "RandomScale",
    "ShapeInstance",
    "ShapesClassification",
    "ShapesSegmentation",
    "VOCSegmentation",
    "compute_mean_std",
    "denormalize",
    "eval_transforms",
    "train_transforms",
    "voc_mask_to_labels",
    "voc_palette",
]
