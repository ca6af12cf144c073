"""Models of the course: upsampling layers, the VGG-style classifier, FCN-32s/16s/8s,
and what came after (``unet.py``, ``segnet.py``, ``deeplab.py``).

One concept, one file: ``upsample.py`` (transposed convolution), ``vgg.py`` (the classifier),
``convolutionalize.py``, ``geometry.py`` (crop offsets), ``fcn.py``, ``complexity.py``.
"""

from __future__ import annotations

from fcn_course.models.complexity import Complexity, complexity, count_flops, count_parameters
from fcn_course.models.convolutionalize import (
    ConvolutionalizedVGG,
    convolutionalize,
    linear_to_conv,
)
from fcn_course.models.deeplab import (
    ASPP,
    ASPP_RATES,
    DeepLab,
    ImagePooling,
    atrous_backbone,
    atrous_conv,
    deeplab,
    dilate_kernel,
    effective_kernel_size,
)
from fcn_course.models.fcn import (
    FCN,
    FCN8s,
    FCN16s,
    FCN32s,
    fcn8s,
    fcn8s_from_fcn16s,
    fcn16s,
    fcn16s_from_fcn32s,
    fcn32s,
)
from fcn_course.models.geometry import (
    AxisMap,
    CoordMap,
    chain,
    conv_map,
    conv_transpose_map,
    crop_offset,
    layer_map,
    paper_crop_offsets,
)
from fcn_course.models.segnet import SegNet, classifier_features, segnet
from fcn_course.models.unet import DoubleConv, UNet, UNetDecoderBlock, match_size, unet
from fcn_course.models.upsample import (
    BilinearUpsample,
    bilinear_kernel,
    bilinear_kernel_size,
    conv_transpose2d,
    conv_transpose_output_size,
    init_bilinear_,
)
from fcn_course.models.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CourseVGG,
    FeatureInfo,
    cfgs,
    course_vgg,
    make_layers,
    vgg16,
    vgg_from_torchvision,
)

__all__ = [
    "FCN",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AxisMap",
    "BilinearUpsample",
    "Complexity",
    "ConvolutionalizedVGG",
    "CoordMap",
    "CourseVGG",
    "FCN8s",
    "FCN16s",
    "FCN32s",
    "FeatureInfo",
    "bilinear_kernel",
    "bilinear_kernel_size",
    "cfgs",
    "chain",
    "complexity",
    "conv_map",
    "conv_transpose2d",
    "conv_transpose_map",
    "conv_transpose_output_size",
    "convolutionalize",
    "count_flops",
    "count_parameters",
    "course_vgg",
    "crop_offset",
    "fcn8s",
    "fcn8s_from_fcn16s",
    "fcn16s",
    "fcn16s_from_fcn32s",
    "fcn32s",
    "init_bilinear_",
    "layer_map",
    "linear_to_conv",
    "make_layers",
    "paper_crop_offsets",
    "vgg16",
    "vgg_from_torchvision",
]

from fcn_course.models.registry import (
    MODEL_BUILDERS,
    backbone_from_spec,
    backbone_spec,
    build_model,
    model_from_spec,
    model_spec,
)

__all__ += [
    "MODEL_BUILDERS",
    "backbone_from_spec",
    "backbone_spec",
    "build_model",
    "model_from_spec",
    "model_spec",
]

__all__ += [
    "ASPP",
    "ASPP_RATES",
    "DeepLab",
    "DoubleConv",
    "ImagePooling",
    "SegNet",
    "UNet",
    "UNetDecoderBlock",
    "atrous_backbone",
    "atrous_conv",
    "classifier_features",
    "deeplab",
    "dilate_kernel",
    "effective_kernel_size",
    "match_size",
    "segnet",
    "unet",
]
