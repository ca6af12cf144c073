"""Models of the course: upsampling layers, the VGG-style classifier, FCN-32s/16s/8s, successors."""

from __future__ import annotations

from fcn_course.models.upsample import (
    BilinearUpsample,
    bilinear_kernel,
    bilinear_kernel_size,
    conv_transpose2d,
    conv_transpose_output_size,
    init_bilinear_,
)

__all__ = [
    "BilinearUpsample",
    "bilinear_kernel",
    "bilinear_kernel_size",
    "conv_transpose2d",
    "conv_transpose_output_size",
    "init_bilinear_",
]
