"""DeepLab (Chen et al., ICLR 2015 and TPAMI 2018) with DeepLabv3's ASPP (Chen et al., 2017).

Chapter 8, "What came after FCN". FCN recovers resolution *after* the backbone threw it
away (upsampling plus skips). DeepLab throws less away: the last pools of the classifier
stop subsampling, and the convolutions after them are made *atrous* ("with holes",
dilated) so that they still see as far as before, with the classifier's weights unchanged.
On top sits atrous spatial pyramid pooling (:class:`ASPP`): the same features seen through
a 1x1 convolution, three 3x3 atrous convolutions of growing rate and the whole image's
average, concatenated and projected to a few channels. Class scores are upsampled to the
input by plain bilinear interpolation.

The pieces, small to large:

* :func:`effective_kernel_size` and :func:`dilate_kernel`: a ``k x k`` kernel at rate ``r``
  is a dense ``r(k - 1) + 1`` kernel with ``r - 1`` zeros between its taps;
  :func:`atrous_conv` builds the convolution, padded so that it keeps the map's size.
* :func:`atrous_backbone`: a VGG's convolutional part with output stride 8 or 16 instead
  of 32 (DeepLab-v1's recipe: each pool that no longer subsamples becomes a 3x3 max pool
  with stride 1, and every convolution after it has its dilation doubled).
* :class:`ImagePooling` and :class:`ASPP`; :class:`DeepLab` and :func:`deeplab`.

Choices, and where they depart from the papers:

* The backbone is the course's VGG-style classifier (or torchvision's VGG16, DeepLab-v1's),
  without ``fc6``/``fc7``; the head is DeepLabv3's ASPP, not v1's atrous ``fc6``.
* ASPP rates scale with the maps: DeepLabv3 uses ``(6, 12, 18)`` at output stride 16 on
  513-pixel crops (a 33x33 map) and doubles them at output stride 8. The course's 128-pixel
  images give maps about a quarter as large (8x8 at output stride 16), so the default
  rates are the paper's divided by three, ``(2, 4, 6)`` and ``(4, 8, 12)``: integers that
  double exactly, and all smaller than the map, beyond which a 3x3 atrous filter sees only
  padding around its centre and degenerates to a 1x1 filter (DeepLabv3's observation that
  motivated the image-pooling branch).
* Upsampling is by the output stride, then a crop to ``H x W`` (not a resize to ``H x W``):
  with pools that round up, feature pixel ``i`` is centred on input pixel
  ``OS * i + (OS - 1) / 2``, which is exactly where bilinear upsampling by ``OS``
  (``align_corners=False``) puts it, so the crop keeps every score where it belongs for any
  input size. A resize would stretch the map by ``H / (OS * ceil(H / OS))`` instead.
* No CRF post-processing (DeepLab v1/v2's fully connected CRF).

Sizes in shape comments are rounded up (``H/8`` means ``ceil(H / 8)``).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcn_course._validation import check_choice, check_int, check_tensor, describe, fail
from fcn_course.models.geometry import AxisMap, CoordMap, layer_map
from fcn_course.models.segnet import classifier_features

__all__ = [
    "ASPP",
    "ASPP_RATES",
    "OUTPUT_STRIDES",
    "DeepLab",
    "ImagePooling",
    "atrous_backbone",
    "atrous_conv",
    "deeplab",
    "dilate_kernel",
    "effective_kernel_size",
]

#: Output strides :func:`atrous_backbone` can give a five-stage VGG.
OUTPUT_STRIDES: tuple[int, ...] = (8, 16)

#: Default ASPP rates per output stride: DeepLabv3's (6, 12, 18) at 16 and (12, 24, 36) at 8,
#: divided by three for the course's smaller maps (see the module docstring).
ASPP_RATES: dict[int, tuple[int, ...]] = {16: (2, 4, 6), 8: (4, 8, 12)}


def effective_kernel_size(kernel_size: int, rate: int) -> int:
    """Extent ``rate * (kernel_size - 1) + 1`` of a ``kernel_size`` kernel dilated by ``rate``.

    A 3x3 kernel at rate 2 spans 5x5 pixels, at rate 4 9x9, with the same 9 weights.
    """
    check_int("effective_kernel_size()", "kernel_size", kernel_size, minimum=1)
    check_int("effective_kernel_size()", "rate", rate, minimum=1)
    return rate * (kernel_size - 1) + 1


def dilate_kernel(weight: torch.Tensor, rate: int) -> torch.Tensor:
    """The dense kernel an atrous convolution applies: ``weight``'s taps ``rate`` apart.

    ``weight`` of shape ``(C_out, C_in, k, k)`` becomes ``(C_out, C_in, K, K)`` with
    ``K = rate * (k - 1) + 1``: ``weight[..., i, j]`` sits at ``[..., rate * i, rate * j]``
    and every other entry is zero (the "holes" of *à trous*). So
    ``F.conv2d(x, dilate_kernel(w, r))`` equals ``F.conv2d(x, w, dilation=r)``.
    """
    where = "dilate_kernel()"
    check_tensor(where, "weight", weight, ndim=4, shape_hint="(C_out, C_in, k, k)")
    check_int(where, "rate", rate, minimum=1, fix="the dilation, e.g. 2")
    kh, kw = weight.shape[-2:]
    dense = weight.new_zeros(
        *weight.shape[:2], effective_kernel_size(kh, rate), effective_kernel_size(kw, rate)
    )  # (C_out, C_in, K, K)
    dense[..., ::rate, ::rate] = weight
    return dense


def atrous_conv(
    in_channels: int, out_channels: int, *, rate: int, kernel_size: int = 3, bias: bool = True
) -> nn.Conv2d:
    """A ``kernel_size`` convolution with dilation ``rate``, padded to keep the map's size.

    The padding is ``rate * (kernel_size - 1) // 2``, half the effective kernel, so the
    output pixel ``i`` is centred on input pixel ``i`` (odd kernels only).
    """
    where = "atrous_conv()"
    check_int(where, "in_channels", in_channels, minimum=1)
    check_int(where, "out_channels", out_channels, minimum=1)
    check_int(where, "rate", rate, minimum=1, fix="the dilation, e.g. 2")
    check_int(where, "kernel_size", kernel_size, minimum=1)
    if kernel_size % 2 == 0:
        raise fail(where, "kernel_size", "an odd size (so that padding keeps the size)",
                   repr(kernel_size), "e.g. 3")
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, padding=rate * (kernel_size - 1) // 2,
        dilation=rate, bias=bias,
    )


def atrous_backbone(features: nn.Sequential, output_stride: int) -> nn.Sequential:
    """A copy of a VGG's convolutional part with output stride ``output_stride`` (8 or 16).

    Pools that keep subsampling round up (``ceil_mode=True``); each later pool becomes a 3x3
    max pool with stride 1 and padding 1 (size kept, centre unmoved), and every convolution
    after it gets twice the dilation (and padding) of the one before: at output stride 8,
    ``pool4`` stops subsampling and ``conv5_*`` run at rate 2. Children keep their names.
    """
    where = "atrous_backbone()"
    if not isinstance(features, nn.Sequential):
        raise fail(where, "features", "an nn.Sequential (a VGG's convolutional part)",
                   describe(features), "e.g. course_vgg().features", error=TypeError)
    check_int(where, "output_stride", output_stride, minimum=1)
    check_choice(where, "output_stride", output_stride, OUTPUT_STRIDES)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    stride, dilation = 1, 1
    for name, layer in features.named_children():
        if isinstance(layer, nn.MaxPool2d):
            if _pair(layer.kernel_size) != (2, 2) or _pair(layer.stride) != (2, 2):
                raise fail(where, "features", "2x2 max pools with stride 2 (VGG's)",
                           f"{name} = {layer}", "")
            if stride < output_stride:
                stride *= 2
                layers[name] = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
            else:
                dilation *= 2
                layers[name] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        elif isinstance(layer, nn.Conv2d):
            k, p = _pair(layer.kernel_size), _pair(layer.padding)
            if _pair(layer.stride) != (1, 1) or any(
                size % 2 == 0 or pad != size // 2 for size, pad in zip(k, p, strict=True)
            ):
                raise fail(where, "features", "'same' convolutions (odd kernel, padding k // 2, "
                           "stride 1)", f"{name} = {layer}", "")
            conv = copy.deepcopy(layer)
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation * p[0], dilation * p[1])
            layers[name] = conv
        elif isinstance(layer, nn.BatchNorm2d | nn.ReLU):
            layers[name] = copy.deepcopy(layer)
        else:
            raise fail(where, "features", "Conv2d, BatchNorm2d, ReLU and MaxPool2d layers",
                       f"{name} = {type(layer).__name__}", "")
    if stride != output_stride:
        raise fail(where, "features", f"at least {output_stride.bit_length() - 1} pools "
                   f"for output stride {output_stride}", f"a stride of {stride}", "")
    return nn.Sequential(layers)


def _conv_bn_relu(conv: nn.Conv2d) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv=conv, bn=nn.BatchNorm2d(conv.out_channels), relu=nn.ReLU(inplace=True),
    ))


class ImagePooling(nn.Module):
    """ASPP's image-level branch: average over the whole map, 1x1 conv, BN, ReLU, and the
    resulting vector copied to every pixel: ``(N, C, h, w) -> (N, out_channels, h, w)``,
    constant over space. It gives every pixel the global context that atrous filters of
    large rate, mostly reading padding, fail to provide.

    Its batch norm sees one value per image and channel. A training batch of a single image
    (say, the short last batch of an epoch) has no batch statistics to speak of, so such a
    batch is normalised with the running statistics instead, as in eval mode, and leaves
    them unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        check_int("ImagePooling()", "in_channels", in_channels, minimum=1)
        check_int("ImagePooling()", "out_channels", out_channels, minimum=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.pool(x))  # (N, out_channels, 1, 1)
        if self.training and x.shape[0] < 2:
            bn = self.bn
            h = F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                             training=False, eps=bn.eps)
        else:
            h = self.bn(h)
        h = self.relu(h)
        return h.expand(-1, -1, *x.shape[-2:])  # (N, out_channels, h, w)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): five views of the same map, fused.

    Branches, each to ``out_channels`` with batch norm and ReLU: ``conv1x1``, one 3x3
    :func:`atrous_conv` per rate in ``atrous``, and ``image_pool`` (:class:`ImagePooling`).
    They are concatenated, ``(N, (2 + len(rates)) * out_channels, h, w)``, and ``project``ed
    by a 1x1 conv, BN, ReLU and dropout to ``(N, out_channels, h, w)``: the size is kept.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        rates: Sequence[int] = ASPP_RATES[16],
        *,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        where = "ASPP()"
        check_int(where, "in_channels", in_channels, minimum=1)
        check_int(where, "out_channels", out_channels, minimum=1)
        self.rates = _check_rates(where, rates)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not (
            0 <= dropout < 1
        ):
            raise fail(where, "dropout", "a probability in [0, 1)", describe(dropout), "e.g. 0.1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv1x1 = _conv_bn_relu(nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.atrous = nn.ModuleList(
            _conv_bn_relu(atrous_conv(in_channels, out_channels, rate=r, bias=False))
            for r in self.rates
        )
        self.image_pool = ImagePooling(in_channels, out_channels)
        branches = 2 + len(self.rates)
        self.project = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(branches * out_channels, out_channels, 1, bias=False),
            bn=nn.BatchNorm2d(out_channels),
            relu=nn.ReLU(inplace=True),
            dropout=nn.Dropout(dropout),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("ASPP.forward()", "x", x, ndim=4, shape_hint="(N, C, h, w)",
                     channels=self.in_channels, floating=True)
        branches = [self.conv1x1(x)]  # (N, A, h, w)
        branches += [conv(x) for conv in self.atrous]  # (N, A, h, w) each, rate r
        branches.append(self.image_pool(x))  # (N, A, h, w), constant over space
        h = torch.cat(branches, dim=1)  # (N, (2 + len(rates)) * A, h, w)
        return self.project(h)  # (N, A, h, w)

    def extra_repr(self) -> str:
        return f"rates={self.rates}"


class DeepLab(nn.Module):
    """DeepLab: an atrous VGG backbone, :class:`ASPP`, a 1x1 ``score`` layer, and bilinear
    upsampling by the output stride, cropped to the input.

    ``model(x)`` maps ``(N, 3, H, W)`` to ``(N, num_classes, H, W)`` for any ``H, W >= 1``
    (in training mode, batches of at least 2, see :class:`ImagePooling`).

    Args:
        features: a VGG's convolutional part (see
            :func:`~fcn_course.models.segnet.classifier_features`); it is copied and made
            atrous by :func:`atrous_backbone`.
        num_classes: segmentation classes.
        output_stride: 8 or 16, the backbone's total subsampling.
        rates: ASPP's atrous rates; ``None`` for :data:`ASPP_RATES` ``[output_stride]``.
        aspp_channels: width of every ASPP branch and of its projection.
        dropout: dropout after ASPP's projection.
    """

    def __init__(
        self,
        features: nn.Sequential,
        *,
        num_classes: int,
        output_stride: int = 8,
        rates: Sequence[int] | None = None,
        aspp_channels: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        where = "DeepLab()"
        check_int(where, "num_classes", num_classes, minimum=1)
        check_int(where, "output_stride", output_stride, minimum=1)
        check_choice(where, "output_stride", output_stride, OUTPUT_STRIDES)
        check_int(where, "aspp_channels", aspp_channels, minimum=1)
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.backbone = atrous_backbone(features, output_stride)
        convs = [m for m in self.backbone if isinstance(m, nn.Conv2d)]
        self.in_channels = convs[0].in_channels
        rates = ASPP_RATES[output_stride] if rates is None else rates
        self.aspp = ASPP(convs[-1].out_channels, aspp_channels, rates, dropout=dropout)
        self.score = nn.Conv2d(aspp_channels, num_classes, kernel_size=1)
        # Where feature pixel i sits in the input: OS * i + (OS - 1) / 2 on both axes, the
        # grid that bilinear upsampling by OS (align_corners=False) lands on.
        self.coord_map: CoordMap = layer_map(self.backbone)
        expected = CoordMap.square(AxisMap(output_stride, Fraction(output_stride - 1, 2)))
        if self.coord_map != expected:
            raise fail(where, "features", f"a backbone whose map is {expected.y}",
                       str(self.coord_map.y), "use VGG-style 'same' convolutions and 2x2 pools")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(
            "DeepLab.forward()", "x", x, ndim=4, shape_hint=f"(N, {self.in_channels}, H, W)",
            channels=self.in_channels, floating=True,
        )
        height, width = x.shape[-2:]
        h = self.backbone(x)  # (N, C5, H/OS, W/OS)
        h = self.aspp(h)  # (N, A, H/OS, W/OS)
        h = self.score(h)  # (N, K, H/OS, W/OS)
        h = F.interpolate(h, scale_factor=self.output_stride, mode="bilinear",
                          align_corners=False)  # (N, K, OS * H/OS, OS * W/OS)
        return h[..., :height, :width]  # (N, K, H, W)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, output_stride={self.output_stride}"


def deeplab(
    *,
    num_classes: int = 7,
    backbone: str | nn.Module | None = None,
    weights_backbone: Any = None,
    output_stride: int = 8,
    rates: Sequence[int] | None = None,
    aspp_channels: int = 64,
    dropout: float = 0.1,
) -> DeepLab:
    """DeepLab with ASPP at the course's scale. ``model(x)`` maps ``(N, 3, H, W)`` to logits
    ``(N, num_classes, H, W)`` for any ``H, W >= 1`` (chapter 8, "What came after FCN").

    Args:
        num_classes: segmentation classes; 7 for the course's shapes (6 shapes + background).
        backbone: as for :func:`~fcn_course.models.fcn.fcn8s`: ``None`` or ``"course"`` (a
            fresh course classifier), ``"vgg16"`` (torchvision's, DeepLab-v1's backbone), or
            a classifier module such as a trained ``course_vgg()`` (copied; its weights are
            kept, the dilation changes only where they are applied).
        weights_backbone: with ``backbone="vgg16"``, torchvision weights (downloaded).
        output_stride: 8 (``pool4`` and ``pool5`` stop subsampling, ``conv5_*`` at rate 2)
            or 16 (only ``pool5`` stops).
        rates: ASPP's atrous rates; by default ``(4, 8, 12)`` at output stride 8 and
            ``(2, 4, 6)`` at 16 (:data:`ASPP_RATES`).
        aspp_channels: width of the ASPP branches (256 in DeepLabv3).
        dropout: dropout after ASPP's projection.
    """
    where = "deeplab()"
    check_int(where, "num_classes", num_classes, minimum=1, fix="e.g. 7 for the course's shapes")
    check_int(where, "output_stride", output_stride, minimum=1)
    check_choice(where, "output_stride", output_stride, OUTPUT_STRIDES)
    features = classifier_features(backbone, weights_backbone, where=where)
    return DeepLab(
        features, num_classes=num_classes, output_stride=output_stride, rates=rates,
        aspp_channels=aspp_channels, dropout=dropout,
    )


def _check_rates(where: str, rates: Any) -> tuple[int, ...]:
    if isinstance(rates, str) or not isinstance(rates, Sequence) or len(rates) == 0:
        raise fail(where, "rates", "a non-empty list of atrous rates", describe(rates),
                   f"e.g. rates={ASPP_RATES[16]}", error=TypeError)
    for r in rates:
        check_int(where, "rates", r, minimum=1, fix=f"e.g. rates={ASPP_RATES[16]}")
    return tuple(rates)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
