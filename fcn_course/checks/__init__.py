"""Exercise checkers: compare a student's answer with the package's reference implementation.

Each ``check_*`` function runs the student's code and the reference on several seeded cases.
It raises :class:`CheckFailure` (an ``AssertionError``) naming the first case that differs,
what was expected and what came, and a hint; it prints one stable verdict line when all agree.
"""

from __future__ import annotations

from fcn_course.checks._core import CheckFailure
from fcn_course.checks.after_fcn import check_dilate_kernel, check_unet_decoder_block
from fcn_course.checks.convolutionalize import check_convolutionalize, check_linear_to_conv
from fcn_course.checks.fcn32s import check_fcn32s_head, check_upscore_crop_offset
from fcn_course.checks.fusion import check_fcn8s_fusion, check_fcn16s_fusion
from fcn_course.checks.losses import check_class_weights, check_pixel_cross_entropy
from fcn_course.checks.metrics import check_confusion_matrix, check_segmentation_metrics
from fcn_course.checks.upsample import (
    check_bilinear_kernel,
    check_conv_transpose2d,
    check_conv_transpose_output_size,
)

__all__ = [
    "CheckFailure",
    "check_bilinear_kernel",
    "check_class_weights",
    "check_confusion_matrix",
    "check_conv_transpose2d",
    "check_conv_transpose_output_size",
    "check_convolutionalize",
    "check_dilate_kernel",
    "check_fcn8s_fusion",
    "check_fcn16s_fusion",
    "check_fcn32s_head",
    "check_linear_to_conv",
    "check_pixel_cross_entropy",
    "check_segmentation_metrics",
    "check_unet_decoder_block",
    "check_upscore_crop_offset",
]
