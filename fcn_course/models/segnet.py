"""SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017), at the course's scale.

Chapter 8, "What came after FCN". SegNet's encoder is the convolutional part of a VGG
classifier (here the course's, or torchvision's VGG16), and its decoder mirrors it layer by
layer. What makes it SegNet is how the decoder upsamples: every encoder pool remembers
*where* each maximum came from (``return_indices=True``), and the matching decoder step puts
each value back at exactly that position, zeros elsewhere (``max_unpool2d``). The sparse
map is then made dense by the decoder's convolutions. Nothing is learned for the
upsampling itself, and only the indices (not whole feature maps, as in U-Net) are kept.

Choices:

* Pools are 2x2 with stride 2 and round up (``ceil_mode=True``), so any ``H x W`` input,
  down to 1x1, keeps at least one pixel. ``max_unpool2d`` is told each pool's input size
  (``output_size``), so odd sizes come back exactly: ``97 -> 49 -> 97``, not 98.
* The decoder mirrors the encoder: encoder convolution ``conv{s}_{i}`` from ``a`` to ``b``
  channels becomes ``conv{s}_{i}_D`` from ``b`` to ``a`` channels, in reverse order, each
  followed by batch normalisation and ReLU (SegNet normalises every layer). The mirror of
  ``conv1_1`` outputs the class scores directly, with neither, as in the paper's model.
* The encoder is a copy of the backbone's convolutions (pre-trained weights are kept, as
  SegNet started from ImageNet's VGG16); the decoder starts from PyTorch's default
  initialisation. The encoder is called ``backbone`` (as in the FCNs) so that the training
  loop's ``backbone_lr_scale`` applies to it.

Sizes in shape comments are rounded up (``H/4`` means ``ceil(H / 4)``).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from fcn_course._validation import check_int, check_tensor, describe, fail
from fcn_course.models.convolutionalize import ConvolutionalizedVGG
from fcn_course.models.fcn import BACKBONES, check_backbone_arguments
from fcn_course.models.vgg import CourseVGG, course_vgg, vgg16, vgg_from_torchvision

__all__ = ["SegNet", "classifier_features", "segnet"]


def classifier_features(
    backbone: str | nn.Module | None = None, weights_backbone: Any = None, *, where: str = ""
) -> nn.Sequential:
    """A copy of the convolutional part (``conv1_1`` ... ``pool5``) of a VGG classifier.

    ``backbone`` is ``None`` or ``"course"`` (a fresh :func:`~fcn_course.models.vgg.course_vgg`),
    ``"vgg16"`` (torchvision's, with ``weights_backbone`` passed on), or a module: a
    :class:`~fcn_course.models.vgg.CourseVGG` (e.g. a trained ``course_vgg()``), a
    torchvision ``VGG``, or a :class:`~fcn_course.models.convolutionalize.ConvolutionalizedVGG`.
    The module itself is left untouched. Used by :func:`segnet` and
    :func:`~fcn_course.models.deeplab.deeplab`, which pass their own name as ``where`` so
    that an error names the function the user called.
    """
    where = where or "classifier_features()"
    from torchvision.models import VGG

    check_backbone_arguments(where, backbone, weights_backbone)
    if backbone is None or backbone == "course":
        return course_vgg().features
    if backbone == "vgg16":
        return vgg16(weights=weights_backbone).features
    if isinstance(backbone, VGG):
        return vgg_from_torchvision(backbone).features  # already a copy
    if isinstance(backbone, CourseVGG | ConvolutionalizedVGG):
        return copy.deepcopy(backbone.features)
    raise fail(
        where, "backbone",
        f"None, one of {', '.join(map(repr, BACKBONES))}, a CourseVGG, a torchvision VGG or "
        "a ConvolutionalizedVGG", describe(backbone), "e.g. backbone=course_vgg()",
        error=TypeError,
    )


class SegNet(nn.Module):
    """SegNet: a VGG encoder whose pools keep their argmax indices, and a mirrored decoder
    that unpools with them.

    ``backbone[s - 1]`` holds stage ``s``'s convolutions (``conv{s}_{i}``, ``bn{s}_{i}``,
    ``relu{s}_{i}``, copied from ``features``), ``decoder[0]`` the mirror of the deepest
    stage, ``decoder[-1]`` that of stage 1, ending in ``conv1_1_D`` (the class scores).
    ``pool`` and ``unpool`` carry no weights and serve every stage. ``model(x)`` maps
    ``(N, 3, H, W)`` to ``(N, num_classes, H, W)`` for any ``H, W >= 1``.

    Args:
        features: the convolutional part of a VGG classifier, children named as by
            :func:`~fcn_course.models.vgg.make_layers`, each stage closed by a 2x2 pool with
            stride 2 (see :func:`classifier_features`); used as it is, not copied.
        num_classes: segmentation classes.
    """

    def __init__(self, features: nn.Sequential, *, num_classes: int) -> None:
        super().__init__()
        where = "SegNet()"
        check_int(where, "num_classes", num_classes, minimum=1)
        stages = _split_stages(where, features)
        self.num_classes = num_classes
        self.in_channels = _convs(stages[0])[0].in_channels
        self.backbone = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True, return_indices=True)
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)
        self.decoder = nn.ModuleList(
            _mirror(stage, s, num_classes) for s, stage in reversed(list(enumerate(stages, 1)))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(
            "SegNet.forward()", "x", x, ndim=4, shape_hint=f"(N, {self.in_channels}, H, W)",
            channels=self.in_channels, floating=True,
        )
        sizes: list[torch.Size] = []
        indices: list[torch.Tensor] = []
        h = x
        for stage in self.backbone:
            h = stage(h)  # stage s: (N, C_s, H/2**(s-1), W/2**(s-1))
            sizes.append(h.shape[-2:])
            h, argmax = self.pool(h)  # (N, C_s, H/2**s, W/2**s), and where each max came from
            indices.append(argmax)
        for stage in self.decoder:
            # Each value back where its maximum was, zeros elsewhere; the size is the pool's
            # input size, so an odd side comes back odd.
            h = self.unpool(h, indices.pop(), output_size=sizes.pop())  # (N, C_s, H/2**(s-1), .)
            h = stage(h)  # (N, C_{s-1}, H/2**(s-1), W/2**(s-1)); stage 1: (N, K, H, W)
        return h

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"


def segnet(
    *,
    num_classes: int = 7,
    backbone: str | nn.Module | None = None,
    weights_backbone: Any = None,
) -> SegNet:
    """SegNet at the course's scale. ``model(x)`` maps ``(N, 3, H, W)`` to logits
    ``(N, num_classes, H, W)`` for any ``H, W >= 1`` (chapter 8, "What came after FCN").

    Args:
        num_classes: segmentation classes; 7 for the course's shapes (6 shapes + background).
        backbone: the encoder's source, as for :func:`~fcn_course.models.fcn.fcn8s`: ``None``
            or ``"course"`` (a fresh course classifier: two convolutions per stage, widths
            16-32-64-128-128, batch norm), ``"vgg16"`` (torchvision's; the paper's encoder),
            or a classifier module such as a trained ``course_vgg()`` (copied).
        weights_backbone: with ``backbone="vgg16"``, torchvision weights such as
            ``VGG16_Weights.IMAGENET1K_V1`` (downloaded).
    """
    where = "segnet()"
    check_int(where, "num_classes", num_classes, minimum=1, fix="e.g. 7 for the course's shapes")
    features = classifier_features(backbone, weights_backbone, where=where)
    return SegNet(features, num_classes=num_classes)


def _split_stages(where: str, features: Any) -> list[nn.Sequential]:
    """The layers between pools, one ``nn.Sequential`` per stage (the pools are dropped)."""
    if not isinstance(features, nn.Sequential):
        raise fail(where, "features", "an nn.Sequential (a VGG's convolutional part)",
                   describe(features), "see classifier_features()", error=TypeError)
    stages: list[nn.Sequential] = []
    current: OrderedDict[str, nn.Module] = OrderedDict()
    for name, layer in features.named_children():
        if isinstance(layer, nn.MaxPool2d):
            if _pair(layer.kernel_size) != (2, 2) or _pair(layer.stride) != (2, 2):
                raise fail(
                    where, "features", "2x2 max pools with stride 2 (VGG's)",
                    f"{name} = {layer}", "the decoder unpools 2x at every stage",
                )
            if not any(isinstance(m, nn.Conv2d) for m in current.values()):
                raise fail(where, "features", "at least one convolution before every pool",
                           f"none before {name}", "")
            stages.append(nn.Sequential(current))
            current = OrderedDict()
        elif isinstance(layer, nn.Conv2d | nn.BatchNorm2d | nn.ReLU):
            current[name] = layer
        else:
            raise fail(where, "features", "Conv2d, BatchNorm2d, ReLU and MaxPool2d layers",
                       f"{name} = {type(layer).__name__}", "")
    if current or not stages:
        raise fail(where, "features", "stages that each end with a 2x2 max pool",
                   f"{len(stages)} pools and {len(current)} layers after the last",
                   "pass a VGG's features, e.g. course_vgg().features")
    return stages


def _mirror(stage: nn.Sequential, s: int, num_classes: int) -> nn.Sequential:
    """The decoder stage of encoder stage ``s``: its convolutions reversed and transposed in
    channels (``a -> b`` becomes ``b -> a``), each with batch norm and ReLU, except that the
    mirror of ``conv1_1`` outputs the class scores, bare."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    convs = _convs(stage)
    for i, conv in reversed(list(enumerate(convs, 1))):
        name = f"{s}_{i}_D"
        kernel, padding = _pair(conv.kernel_size), _pair(conv.padding)
        if s == 1 and i == 1:
            layers[f"conv{name}"] = nn.Conv2d(conv.out_channels, num_classes, kernel,
                                              padding=padding)
            continue
        layers[f"conv{name}"] = nn.Conv2d(conv.out_channels, conv.in_channels, kernel,
                                          padding=padding)
        layers[f"bn{name}"] = nn.BatchNorm2d(conv.in_channels)
        layers[f"relu{name}"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


def _convs(stage: nn.Sequential) -> list[nn.Conv2d]:
    return [m for m in stage if isinstance(m, nn.Conv2d)]


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
