"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, CVPR 2015 / PAMI 2017).

Chapters "FCN-32s" and "Skip connections". Each network is a convolutionalised classifier
(:func:`fcn_course.models.convolutionalize`) followed by a 1x1 ``score_fr`` layer, and, for
16s and 8s, scores of ``pool4``/``pool3`` fused (by sum) with the upsampled coarser scores.

Choices, and where they depart from the paper's Caffe nets:

* No ``pad=100`` on ``conv1_1``. The paper pads so that the unpadded 7x7 ``fc6`` never runs
  out of input; here ``fc6`` itself is padded ``k // 2`` ('same'), which needs an odd
  kernel (3 for the course's classifier at 96x96, 7 for VGG16). With pools that round up,
  any ``H x W`` input, down to 1x1, gives ``H x W`` logits.
* Every crop offset is derived from the layers' geometry with
  :mod:`fcn_course.models.geometry` and kept in ``model.crop_offsets``. Without the big
  padding the upsampled branch is the larger one, so it is cropped onto the skip's grid
  (the paper crops the skip branch instead); the final crop aligns with the input.
* Upsampling is a bias-free ``ConvTranspose2d`` with kernel ``2f`` and stride ``f``,
  bilinear-initialised (:func:`~fcn_course.models.upsample.init_bilinear_`). As in the
  paper's text, the 2x layers inside 16s/8s (``upscore2``, ``upscore_pool4``) are learned
  (``learnable_upsampling=True``) and the final one (``upscore``, ``upscore16``,
  ``upscore8``) stays fixed bilinear interpolation.
* ``score_fr``, ``score_pool4``, ``score_pool3`` start at zero: a new FCN-16s predicts
  exactly what its FCN-32s did, up to interpolation (see :func:`fcn16s_from_fcn32s`).
* Staged training (the CVPR recipe) goes 32s -> 16s -> 8s with
  :func:`fcn16s_from_fcn32s` and :func:`fcn8s_from_fcn16s`. Training 8s at once (the PAMI
  recipe) scales ``pool4`` by 0.01 and ``pool3`` by 0.0001 before scoring
  (``skip_scaling=True``), which evens out the feature magnitudes of the three branches.

Sizes in shape comments are rounded up (``H/32`` means ``ceil(H / 32)``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from fcn_course._validation import check_choice, check_int, check_tensor, describe, fail
from fcn_course.models.convolutionalize import ConvolutionalizedVGG, convolutionalize
from fcn_course.models.geometry import CoordMap, crop_offset, layer_map
from fcn_course.models.upsample import bilinear_kernel_size, init_bilinear_
from fcn_course.models.vgg import course_vgg, vgg16

__all__ = [
    "BACKBONES",
    "FCN",
    "FCN8s",
    "FCN16s",
    "FCN32s",
    "fcn8s",
    "fcn8s_from_fcn16s",
    "fcn16s",
    "fcn16s_from_fcn32s",
    "fcn32s",
]

#: Backbone names the builders accept (``None`` means ``"course"``).
BACKBONES: tuple[str, ...] = ("course", "vgg16")

#: The PAMI paper's scales for training FCN-8s at once.
SKIP_SCALE_POOL4 = 0.01
SKIP_SCALE_POOL3 = 0.0001


def _score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A zero-initialised 1x1 convolution from features to class scores."""
    layer = nn.Conv2d(in_channels, num_classes, kernel_size=1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _upsample_layer(num_classes: int, factor: int, *, learnable: bool) -> nn.ConvTranspose2d:
    """Bias-free transposed convolution, kernel ``2f``, stride ``f``, bilinear-initialised."""
    layer = nn.ConvTranspose2d(
        num_classes, num_classes, bilinear_kernel_size(factor), stride=factor, bias=False
    )
    init_bilinear_(layer)
    layer.weight.requires_grad_(learnable)
    return layer


def _crop(x: torch.Tensor, offset: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """``x[..., oy:oy + h, ox:ox + w]``, the alignment derived in ``crop_offsets``."""
    (oy, ox), (h, w) = offset, size
    if x.shape[-2] < oy + h or x.shape[-1] < ox + w:
        raise RuntimeError(
            f"cannot crop {h}x{w} at offset {offset} from a {x.shape[-2]}x{x.shape[-1]} map; "
            "the upsampling layers are too small for this backbone's geometry"
        )
    return x[..., oy : oy + h, ox : ox + w]


class FCN(nn.Module):
    """What FCN-32s, -16s and -8s share: the backbone, ``score_fr`` and the bookkeeping.

    The backbone is adapted in place: ``fc8`` is dropped, ``fc6`` padded 'same', and the
    pools set to round up. ``crop_offsets`` maps the name of each cropped layer to its
    ``(rows, columns)`` offset; ``coord_maps`` keeps each blob's map to input pixels.
    """

    variant: str = ""

    def __init__(self, backbone: ConvolutionalizedVGG, *, num_classes: int) -> None:
        super().__init__()
        where = f"{type(self).__name__}()"
        check_int(where, "num_classes", num_classes, minimum=1)
        if not isinstance(backbone, ConvolutionalizedVGG):
            raise fail(
                where, "backbone", "a ConvolutionalizedVGG (see convolutionalize())",
                describe(backbone), "or use the builders fcn32s/fcn16s/fcn8s", error=TypeError,
            )
        self.backbone = _adapt_backbone(where, backbone)
        self.num_classes = num_classes
        self.features_by_name = {f["name"]: f for f in backbone.feature_info}
        self.score_fr = _score_layer(backbone.fc7.out_channels, num_classes)
        self.crop_offsets: dict[str, tuple[int, int]] = {}
        self.coord_maps: dict[str, CoordMap] = {
            "score_fr": backbone.coord_map("fc7").compose(layer_map(self.score_fr)),
        }

    def _align(self, name: str, layer: nn.Module, source: str, reference: str) -> None:
        """Record the map of ``name = layer(source)`` and its crop onto ``reference``."""
        self.coord_maps[name] = self.coord_maps[source].compose(layer_map(layer))
        self.crop_offsets[name] = crop_offset(self.coord_maps[name], self.coord_maps[reference])

    def _skip_map(self, name: str, pool: str, layer: nn.Module) -> None:
        self.coord_maps[name] = self.backbone.coord_map(pool).compose(layer_map(layer))

    def _check_input(self, x: Any) -> tuple[int, int]:
        check_tensor(
            f"{type(self).__name__}.forward()", "x", x, ndim=4, shape_hint="(N, 3, H, W)",
            channels=self.backbone.features[0].in_channels, floating=True,
        )
        return int(x.shape[-2]), int(x.shape[-1])

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the convolutionalised classifier (conv1_1 ... fc7)."""
        return (p for p in self.backbone.parameters() if p.requires_grad)

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters added for segmentation: score and upsampling layers."""
        inside = {id(p) for p in self.backbone.parameters()}
        return (p for p in self.parameters() if p.requires_grad and id(p) not in inside)

    def extra_repr(self) -> str:
        return (
            f"variant={self.variant!r}, num_classes={self.num_classes}, "
            f"crop_offsets={self.crop_offsets}"
        )


class FCN32s(FCN):
    """FCN-32s: ``score_fr`` upsampled 32x by a fixed bilinear ``upscore``, then cropped."""

    variant = "32s"

    def __init__(self, backbone: ConvolutionalizedVGG, *, num_classes: int) -> None:
        super().__init__(backbone, num_classes=num_classes)
        self.upscore = _upsample_layer(num_classes, 32, learnable=False)
        self.coord_maps["image"] = CoordMap.identity()
        self._align("upscore", self.upscore, "score_fr", "image")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self._check_input(x)
        h = self.backbone.forward_features(x)["fc7"]  # (N, C7, H/32, W/32)
        h = self.score_fr(h)  # (N, K, H/32, W/32)
        h = self.upscore(h)  # (N, K, 32 * H/32 + 32, ...)
        return _crop(h, self.crop_offsets["upscore"], size)  # (N, K, H, W)


class FCN16s(FCN):
    """FCN-16s: 2x-upsampled ``score_fr`` plus ``score_pool4``, upsampled 16x."""

    variant = "16s"

    def __init__(
        self,
        backbone: ConvolutionalizedVGG,
        *,
        num_classes: int,
        skip_scaling: bool = False,
        learnable_upsampling: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes=num_classes)
        self.skip_scaling = _check_bool(f"{type(self).__name__}()", "skip_scaling", skip_scaling)
        self.scale_pool4 = SKIP_SCALE_POOL4 if skip_scaling else 1.0
        pool4 = self.features_by_name["pool4"]["channels"]
        self.upscore2 = _upsample_layer(num_classes, 2, learnable=learnable_upsampling)
        self.score_pool4 = _score_layer(pool4, num_classes)
        self.upscore16 = _upsample_layer(num_classes, 16, learnable=False)

        self.coord_maps["image"] = CoordMap.identity()
        self._skip_map("score_pool4", "pool4", self.score_pool4)
        self._align("upscore2", self.upscore2, "score_fr", "score_pool4")
        # The sum is taken on score_pool4's grid, so it shares score_pool4's map.
        self.coord_maps["fuse_pool4"] = self.coord_maps["score_pool4"]
        self._align("upscore16", self.upscore16, "fuse_pool4", "image")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self._check_input(x)
        f = self.backbone.forward_features(x)
        h = self.score_fr(f["fc7"])  # (N, K, H/32, W/32)
        h = self.upscore2(h)  # (N, K, 2 * H/32 + 2, ...)
        score_pool4 = self.score_pool4(f["pool4"] * self.scale_pool4)  # (N, K, H/16, W/16)
        h = _crop(h, self.crop_offsets["upscore2"], score_pool4.shape[-2:]) + score_pool4
        h = self.upscore16(h)  # (N, K, 16 * H/16 + 16, ...)
        return _crop(h, self.crop_offsets["upscore16"], size)  # (N, K, H, W)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", skip_scaling={self.skip_scaling}"


class FCN8s(FCN):
    """FCN-8s: FCN-16s's fused scores upsampled 2x, plus ``score_pool3``, upsampled 8x."""

    variant = "8s"

    def __init__(
        self,
        backbone: ConvolutionalizedVGG,
        *,
        num_classes: int,
        skip_scaling: bool = False,
        learnable_upsampling: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes=num_classes)
        self.skip_scaling = _check_bool(f"{type(self).__name__}()", "skip_scaling", skip_scaling)
        self.scale_pool4 = SKIP_SCALE_POOL4 if skip_scaling else 1.0
        self.scale_pool3 = SKIP_SCALE_POOL3 if skip_scaling else 1.0
        pool3 = self.features_by_name["pool3"]["channels"]
        pool4 = self.features_by_name["pool4"]["channels"]
        self.upscore2 = _upsample_layer(num_classes, 2, learnable=learnable_upsampling)
        self.score_pool4 = _score_layer(pool4, num_classes)
        self.upscore_pool4 = _upsample_layer(num_classes, 2, learnable=learnable_upsampling)
        self.score_pool3 = _score_layer(pool3, num_classes)
        self.upscore8 = _upsample_layer(num_classes, 8, learnable=False)

        self.coord_maps["image"] = CoordMap.identity()
        self._skip_map("score_pool4", "pool4", self.score_pool4)
        self._skip_map("score_pool3", "pool3", self.score_pool3)
        self._align("upscore2", self.upscore2, "score_fr", "score_pool4")
        self.coord_maps["fuse_pool4"] = self.coord_maps["score_pool4"]
        self._align("upscore_pool4", self.upscore_pool4, "fuse_pool4", "score_pool3")
        self.coord_maps["fuse_pool3"] = self.coord_maps["score_pool3"]
        self._align("upscore8", self.upscore8, "fuse_pool3", "image")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self._check_input(x)
        f = self.backbone.forward_features(x)
        h = self.score_fr(f["fc7"])  # (N, K, H/32, W/32)
        h = self.upscore2(h)  # (N, K, 2 * H/32 + 2, ...)
        score_pool4 = self.score_pool4(f["pool4"] * self.scale_pool4)  # (N, K, H/16, W/16)
        h = _crop(h, self.crop_offsets["upscore2"], score_pool4.shape[-2:]) + score_pool4
        h = self.upscore_pool4(h)  # (N, K, 2 * H/16 + 2, ...)
        score_pool3 = self.score_pool3(f["pool3"] * self.scale_pool3)  # (N, K, H/8, W/8)
        h = _crop(h, self.crop_offsets["upscore_pool4"], score_pool3.shape[-2:]) + score_pool3
        h = self.upscore8(h)  # (N, K, 8 * H/8 + 8, ...)
        return _crop(h, self.crop_offsets["upscore8"], size)  # (N, K, H, W)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", skip_scaling={self.skip_scaling}"


def fcn32s(
    *,
    num_classes: int = 7,
    backbone: str | nn.Module | None = None,
    weights_backbone: Any = None,
) -> FCN32s:
    """FCN-32s. ``model(x)`` maps ``(N, 3, H, W)`` to logits ``(N, num_classes, H, W)``.

    Args:
        num_classes: segmentation classes; 7 for the course's shapes (6 shapes + background).
        backbone: ``None`` or ``"course"`` (a fresh :func:`~fcn_course.models.vgg.course_vgg`),
            ``"vgg16"`` (torchvision's), or a module: a classifier such as a trained
            ``course_vgg`` or torchvision ``VGG`` (copied and convolutionalised), or a
            :class:`~fcn_course.models.convolutionalize.ConvolutionalizedVGG` (copied).
        weights_backbone: with ``backbone="vgg16"``, torchvision weights such as
            ``VGG16_Weights.IMAGENET1K_V1`` (downloaded; inputs then need ImageNet
            normalisation, see :func:`~fcn_course.models.vgg.vgg16`).
    """
    where = "fcn32s()"
    check_int(where, "num_classes", num_classes, minimum=1, fix="e.g. 7 for the course's shapes")
    return FCN32s(_resolve_backbone(where, backbone, weights_backbone), num_classes=num_classes)


def fcn16s(
    *,
    num_classes: int = 7,
    backbone: str | nn.Module | None = None,
    weights_backbone: Any = None,
    skip_scaling: bool = False,
    learnable_upsampling: bool = True,
) -> FCN16s:
    """FCN-16s; arguments as :func:`fcn32s`.

    ``skip_scaling=True`` scales ``pool4`` by 0.01 before ``score_pool4`` (PAMI's at-once
    training); ``learnable_upsampling`` lets ``upscore2`` train (``upscore16`` stays fixed).
    To start from a trained FCN-32s use :func:`fcn16s_from_fcn32s`.
    """
    where = "fcn16s()"
    check_int(where, "num_classes", num_classes, minimum=1, fix="e.g. 7 for the course's shapes")
    _check_bool(where, "skip_scaling", skip_scaling)
    _check_bool(where, "learnable_upsampling", learnable_upsampling)
    return FCN16s(
        _resolve_backbone(where, backbone, weights_backbone), num_classes=num_classes,
        skip_scaling=skip_scaling, learnable_upsampling=learnable_upsampling,
    )


def fcn8s(
    *,
    num_classes: int = 7,
    backbone: str | nn.Module | None = None,
    weights_backbone: Any = None,
    skip_scaling: bool = False,
    learnable_upsampling: bool = True,
) -> FCN8s:
    """FCN-8s; arguments as :func:`fcn16s` (``skip_scaling`` also scales ``pool3`` by 1e-4).

    To start from a trained FCN-16s use :func:`fcn8s_from_fcn16s`.
    """
    where = "fcn8s()"
    check_int(where, "num_classes", num_classes, minimum=1, fix="e.g. 7 for the course's shapes")
    _check_bool(where, "skip_scaling", skip_scaling)
    _check_bool(where, "learnable_upsampling", learnable_upsampling)
    return FCN8s(
        _resolve_backbone(where, backbone, weights_backbone), num_classes=num_classes,
        skip_scaling=skip_scaling, learnable_upsampling=learnable_upsampling,
    )


def fcn16s_from_fcn32s(model32: FCN32s, *, learnable_upsampling: bool = True) -> FCN16s:
    """An FCN-16s initialised from a (trained) FCN-32s, as in the paper's staged training.

    Backbone and ``score_fr`` are copied; ``score_pool4`` starts at zero, so the new model
    predicts what ``model32`` did, except that its 32x upsampling now happens as 2x then
    16x bilinear steps. Away from the border the two differ by at most
    ``(max|d²s/dy²| + max|d²s/dx²|) / 8`` for coarse scores ``s`` (second differences), and
    not at all where ``s`` is locally linear.
    """
    where = "fcn16s_from_fcn32s()"
    if not isinstance(model32, FCN32s):
        raise fail(where, "model32", "an FCN32s", describe(model32), "build one with fcn32s()",
                   error=TypeError)
    model16 = FCN16s(
        copy.deepcopy(model32.backbone), num_classes=model32.num_classes,
        learnable_upsampling=learnable_upsampling,
    )
    model16.score_fr.load_state_dict(model32.score_fr.state_dict())
    return model16.train(model32.training)


def fcn8s_from_fcn16s(model16: FCN16s, *, learnable_upsampling: bool = True) -> FCN8s:
    """An FCN-8s initialised from a (trained) FCN-16s: backbone, ``score_fr``, ``upscore2``
    and ``score_pool4`` copied, ``score_pool3`` at zero (see :func:`fcn16s_from_fcn32s`).
    ``skip_scaling`` follows ``model16``'s, since its ``score_pool4`` was trained with it."""
    where = "fcn8s_from_fcn16s()"
    if not isinstance(model16, FCN16s):
        raise fail(where, "model16", "an FCN16s", describe(model16), "build one with fcn16s()",
                   error=TypeError)
    model8 = FCN8s(
        copy.deepcopy(model16.backbone), num_classes=model16.num_classes,
        skip_scaling=model16.skip_scaling, learnable_upsampling=learnable_upsampling,
    )
    for name in ("score_fr", "upscore2", "score_pool4"):
        getattr(model8, name).load_state_dict(getattr(model16, name).state_dict())
    return model8.train(model16.training)


def check_backbone_arguments(
    where: str, backbone: str | nn.Module | None, weights_backbone: Any
) -> None:
    """Validate a builder's ``backbone`` name and ``weights_backbone`` (shared by the FCN,
    SegNet and DeepLab builders); modules are checked by the caller."""
    if isinstance(backbone, str):
        check_choice(where, "backbone", backbone, BACKBONES,
                     fix="or pass a classifier module, e.g. a trained course_vgg()")
    if weights_backbone is not None and backbone != "vgg16":
        raise fail(
            where, "weights_backbone", "None unless backbone='vgg16'", describe(weights_backbone),
            "load your own weights into a classifier and pass it as backbone",
        )


def _resolve_backbone(
    where: str, backbone: str | nn.Module | None, weights_backbone: Any
) -> ConvolutionalizedVGG:
    """The builders' ``backbone`` argument as a convolutionalised classifier of our own."""
    check_backbone_arguments(where, backbone, weights_backbone)
    if backbone is None or backbone == "course":
        return convolutionalize(course_vgg())
    if backbone == "vgg16":
        return convolutionalize(vgg16(weights=weights_backbone))
    if isinstance(backbone, ConvolutionalizedVGG):
        return copy.deepcopy(backbone)
    if isinstance(backbone, nn.Module):
        return convolutionalize(backbone)
    raise fail(
        where, "backbone", f"None, one of {', '.join(map(repr, BACKBONES))}, or an nn.Module",
        describe(backbone), "", error=TypeError,
    )


def _adapt_backbone(where: str, backbone: ConvolutionalizedVGG) -> ConvolutionalizedVGG:
    """Drop ``fc8``, pad ``fc6`` 'same' and make the pools round up, in place."""
    kh, kw = backbone.fc6.kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise fail(
            where, "backbone", "an fc6 with an odd kernel, so that padding k // 2 keeps the size",
            f"a {kh}x{kw} fc6 (classifier input_size={backbone.input_size})",
            "build the classifier with input_size/32 odd, e.g. course_vgg(input_size=96) (3x3)",
        )
    backbone.fc8 = None
    backbone.fc6.padding = (kh // 2, kw // 2)
    for layer in backbone.features:
        if isinstance(layer, nn.MaxPool2d):
            # Caffe's rounding: a partial window still emits a pixel, so no input is too small.
            layer.ceil_mode = True
    return backbone


def _check_bool(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(where, name, "True or False", describe(value), "", error=TypeError)
    return value
