"""The course's VGG-style classifier, and torchvision's VGG16 in the same form.

The book's chapter "From classifier to fully convolutional network" starts here: a
classifier whose fully connected layers ``fc6``, ``fc7``, ``fc8`` fix the input size and
throw away where things are. :func:`fcn_course.models.convolutionalize` turns it into a
network that emits a score map, and the FCNs of :mod:`fcn_course.models.fcn` are built on that.

Both the course's classifier and torchvision's ``vgg16`` end up as a :class:`CourseVGG`:
``features`` is an ``nn.Sequential`` whose children carry the paper's names (``conv1_1``,
``relu1_1``, ..., ``pool5``), ``classifier`` holds ``fc6``, ``fc7``, ``fc8``, and
``feature_info`` records, for every pooling layer, its channel count and its stride with
respect to the input (``reduction``) so that skip heads read their sizes from data.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

import torch
from torch import nn

from fcn_course._validation import check_int, check_tensor, describe, fail
from fcn_course.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CourseVGG",
    "FeatureInfo",
    "cfgs",
    "course_vgg",
    "make_layers",
    "vgg16",
    "vgg_from_torchvision",
]

# IMAGENET_MEAN / IMAGENET_STD (from fcn_course.data.transforms): the ImageNet-trained
# torchvision weights expect an RGB image in [0, 1] normalised per channel as (x - mean) / std.

#: Layer tables: an int is a 3x3 convolution with that many output channels (then a ReLU),
#: ``"M"`` a 2x2 max pool with stride 2 that closes a stage. Every table has five stages,
#: so the output stride of ``pool5`` is 32. ``"course"`` is small enough to train on a
#: laptop CPU; ``"vgg16"`` is configuration D of Simonyan & Zisserman, for comparison.
cfgs: dict[str, list[int | Literal["M"]]] = {
    "course": [16, 16, "M", 32, 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"],
    "vgg16": [
        64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
    ],
}

#: The course classifier's defaults: stage widths, fc6/fc7 width, input size. At 96x96 the
#: pool5 map is 3x3, so the convolutionalised fc6 is a 3x3 convolution (odd, hence 'same'
#: padding is possible in the FCN). At 128x128 the convolutional part costs about 0.47 GFLOPs.
COURSE_WIDTHS: tuple[int, int, int, int, int] = (16, 32, 64, 128, 128)
COURSE_FC_WIDTH = 256
COURSE_INPUT_SIZE = 96


class FeatureInfo(TypedDict):
    """One tap of the feature extractor: the layer's name, its channels, its stride."""

    name: str
    channels: int
    reduction: int


def make_layers(
    cfg: Sequence[int | Literal["M"]], *, batch_norm: bool = False, in_channels: int = 3
) -> tuple[nn.Sequential, list[FeatureInfo]]:
    """Build the convolutional part from a layer table (see :data:`cfgs`).

    Returns the ``nn.Sequential`` with paper names (``conv{stage}_{i}``, ``bn{stage}_{i}``,
    ``relu{stage}_{i}``, ``pool{stage}``) and the :class:`FeatureInfo` of every pool.
    Pools use ``ceil_mode=True`` (Caffe's rounding), so an input of any size, even 1x1,
    keeps at least one pixel: stage ``s`` has ``ceil(H / 2**s)`` rows.
    """
    where = "make_layers()"
    check_int(where, "in_channels", in_channels, minimum=1)
    if isinstance(cfg, str) or not isinstance(cfg, Sequence) or len(cfg) == 0:
        raise fail(
            where, "cfg", "a non-empty list of channel counts and 'M'", describe(cfg),
            "e.g. cfgs['course']", error=TypeError,
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    info: list[FeatureInfo] = []
    stage, index, channels = 1, 1, in_channels
    for item in cfg:
        if item == "M":
            layers[f"pool{stage}"] = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
            info.append({"name": f"pool{stage}", "channels": channels, "reduction": 2**stage})
            stage, index = stage + 1, 1
            continue
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise fail(
                where, "cfg", "positive channel counts or 'M'", f"{item!r} in {list(cfg)!r}",
                "use ints for 3x3 convolutions and 'M' for a max pool",
            )
        layers[f"conv{stage}_{index}"] = nn.Conv2d(channels, item, kernel_size=3, padding=1)
        if batch_norm:
            layers[f"bn{stage}_{index}"] = nn.BatchNorm2d(item)
        layers[f"relu{stage}_{index}"] = nn.ReLU(inplace=True)
        channels, index = item, index + 1
    if cfg[-1] != "M":
        raise fail(
            where, "cfg", "a table that ends with 'M' (the last stage's pool)", repr(list(cfg)),
            "append 'M'",
        )
    return nn.Sequential(layers), info


def _classifier(in_features: int, fc_width: int, num_classes: int, dropout: float) -> nn.Sequential:
    """The head ``fc6 -> ReLU -> Dropout -> fc7 -> ReLU -> Dropout -> fc8`` of VGG."""
    return nn.Sequential(
        OrderedDict(
            fc6=nn.Linear(in_features, fc_width),
            relu6=nn.ReLU(inplace=True),
            drop6=nn.Dropout(dropout),
            fc7=nn.Linear(fc_width, fc_width),
            relu7=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout),
            fc8=nn.Linear(fc_width, num_classes),
        )
    )


class CourseVGG(nn.Module):
    """A VGG-style classifier: five conv stages (output stride 32), then fc6, fc7, fc8.

    The fully connected ``fc6`` reads the whole ``pool5`` map, so the network accepts only
    ``input_size x input_size`` images; that limitation is the starting point of the chapter
    "From classifier to fully convolutional network".

    Args:
        features: the convolutional part, children named as by :func:`make_layers`.
        feature_info: what :func:`make_layers` returned with it.
        input_size: the side of the square images the classifier is built for.
        fc_width: output width of ``fc6`` and ``fc7`` (4096 in VGG16).
    """

    def __init__(
        self,
        features: nn.Sequential,
        feature_info: Sequence[FeatureInfo],
        *,
        num_classes: int,
        input_size: int,
        fc_width: int,
        dropout: float = 0.5,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        where = "CourseVGG()"
        check_int(where, "num_classes", num_classes, minimum=1)
        check_int(where, "input_size", input_size, minimum=1)
        check_int(where, "fc_width", fc_width, minimum=1)
        _check_dropout(where, dropout)
        _check_feature_info(where, features, feature_info)
        self.features = features
        self.feature_info: list[FeatureInfo] = [FeatureInfo(**f) for f in feature_info]
        self.input_size = input_size
        self.num_classes = num_classes
        # fc6 sees the whole pool5 map: pool5_size x pool5_size pixels of the last width.
        self.pool5_size = _pool5_size(features, input_size)
        in_features = self.feature_info[-1]["channels"] * self.pool5_size**2
        self.classifier = _classifier(in_features, fc_width, num_classes, dropout)
        if init_weights:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's VGG initialisation: He (fan-out) for convolutions, N(0, 0.01) for fc."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_size
        check_tensor(
            "CourseVGG.forward()", "x", x, ndim=4, shape_hint="(N, 3, H, W)",
            channels=self.features[0].in_channels, floating=True,
        )
        if tuple(x.shape[-2:]) != (s, s):
            raise fail(
                "CourseVGG.forward()", "x", f"images of {s}x{s} pixels", describe(x),
                f"the fully connected fc6 fixes the input size: resize to {s}x{s}, or use "
                "convolutionalize(model) for a score map on images of any size",
            )
        h = self.features(x)  # (N, C5, S/32, S/32)
        h = torch.flatten(h, 1)  # (N, C5 * (S/32)**2), channel-major like a (C, H, W) view
        return self.classifier(h)  # (N, num_classes)


def course_vgg(
    *,
    num_classes: int = 6,
    input_size: int = COURSE_INPUT_SIZE,
    widths: Sequence[int] = COURSE_WIDTHS,
    fc_width: int = COURSE_FC_WIDTH,
    dropout: float = 0.5,
    batch_norm: bool = True,
) -> CourseVGG:
    """The course's classifier: ``cfgs["course"]`` with stage widths ``widths``.

    Defaults: two 3x3 convolutions per stage with widths 16-32-64-128-128, fc6/fc7 of 256
    units, 96x96 inputs (pool5 is 3x3, fc6 sees 3*3*128 features), 6 classes (the shapes of
    the course's data set). About 0.95 M parameters and 0.26 GFLOPs per 96x96 image.

    Batch normalisation after each convolution is on by default: without it this ten-layer
    plain network, trained from scratch with Adam, stays at chance for epochs on the shapes
    data (VGG16 itself was trained in stages from shallower nets). ``batch_norm=False``
    gives the paper-faithful layer list.
    """
    where = "course_vgg()"
    check_int(where, "num_classes", num_classes, minimum=1)
    check_int(where, "input_size", input_size, minimum=1, fix="e.g. 96 (pool5 is then 3x3)")
    if isinstance(widths, str) or not isinstance(widths, Sequence) or len(widths) != 5:
        raise fail(
            where, "widths", "five channel counts, one per stage", describe(widths),
            f"e.g. widths={COURSE_WIDTHS}", error=TypeError,
        )
    for w in widths:
        check_int(where, "widths", w, minimum=1, fix=f"e.g. widths={COURSE_WIDTHS}")
    # Same depth as the "course" table, one width per stage.
    stage_widths = iter(widths)
    cfg: list[int | Literal["M"]] = []
    width = next(stage_widths)
    for item in cfgs["course"]:
        if item == "M":
            cfg.append("M")
            width = next(stage_widths, width)
        else:
            cfg.append(width)
    features, info = make_layers(cfg, batch_norm=batch_norm)
    return CourseVGG(
        features, info, num_classes=num_classes, input_size=input_size, fc_width=fc_width,
        dropout=dropout,
    )


def vgg_from_torchvision(model: nn.Module) -> CourseVGG:
    """A torchvision ``VGG`` (``vgg11`` ... ``vgg19_bn``) as a :class:`CourseVGG`.

    The layers are copied (the original is left untouched) and renamed after the paper;
    ``feature_info`` is recorded. torchvision's ``AdaptiveAvgPool2d((7, 7))`` between pool5
    and fc6 is dropped: at the 224x224 input the weights were trained for, pool5 is already
    7x7 and the pool is the identity, so the result has ``input_size=224`` and reproduces
    the torchvision model's logits there. torchvision's pools round down (``ceil_mode=False``);
    they are kept as they are, which at 224 (a multiple of 32) changes nothing.
    """
    where = "vgg_from_torchvision()"
    from torchvision.models import VGG

    if not isinstance(model, VGG):
        raise fail(
            where, "model", "a torchvision.models.VGG, e.g. vgg16(weights=None)",
            type(model).__name__, "", error=TypeError,
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    info: list[FeatureInfo] = []
    stage, index, channels = 1, 1, 3
    for layer in model.features:
        if isinstance(layer, nn.Conv2d):
            name = f"conv{stage}_{index}"
            channels = layer.out_channels
        elif isinstance(layer, nn.BatchNorm2d):
            name = f"bn{stage}_{index}"
        elif isinstance(layer, nn.ReLU):
            name, index = f"relu{stage}_{index}", index + 1
        elif isinstance(layer, nn.MaxPool2d):
            name = f"pool{stage}"
            info.append({"name": name, "channels": channels, "reduction": 2**stage})
            stage, index = stage + 1, 1
        else:
            raise fail(
                where, "model", "features made of Conv2d, BatchNorm2d, ReLU and MaxPool2d",
                f"a {type(layer).__name__} in model.features", "",
            )
        layers[name] = copy.deepcopy(layer)
    head = [m for m in model.classifier if isinstance(m, nn.Linear)]
    dropouts = [m for m in model.classifier if isinstance(m, nn.Dropout)]
    if len(head) != 3 or len(info) != 5:
        raise fail(
            where, "model", "5 pooling stages and 3 Linear layers (fc6, fc7, fc8)",
            f"{len(info)} pools and {len(head)} Linear layers", "",
        )
    fc6, fc8 = head[0], head[2]
    pool5_cells, rem = divmod(fc6.in_features, channels)
    pool5_size = math.isqrt(pool5_cells)
    if rem or pool5_size**2 != pool5_cells:
        raise fail(
            where, "model", f"fc6.in_features = {channels} * k * k (pool5 channels times a square)",
            str(fc6.in_features), "",
        )
    result = CourseVGG(
        nn.Sequential(layers), info, num_classes=fc8.out_features, input_size=32 * pool5_size,
        fc_width=fc6.out_features, dropout=dropouts[0].p if dropouts else 0.0, init_weights=False,
    )
    for name, source in zip(("fc6", "fc7", "fc8"), head, strict=True):
        getattr(result.classifier, name).load_state_dict(source.state_dict())
    result.train(model.training)
    return result


def vgg16(*, weights: Any = None, progress: bool = True) -> CourseVGG:
    """torchvision's VGG16 as a :class:`CourseVGG` (13 convolutions, fc6/fc7 of 4096, 224x224).

    ``weights=None`` (the default, and what the tests use) gives random weights. With
    ``weights=torchvision.models.VGG16_Weights.IMAGENET1K_V1`` (or ``"DEFAULT"``) torchvision
    downloads the ImageNet classifier the FCN paper started from (528 MB, cached under
    ``~/.cache/torch``); inputs must then be RGB in ``[0, 1]`` normalised with
    :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD` (``weights.transforms()`` does it), as in
    the chapter "Scaling up".
    """
    from torchvision.models import VGG16_Weights
    from torchvision.models import vgg16 as tv_vgg16

    try:
        resolved = VGG16_Weights.verify(weights)
    except (ValueError, KeyError, TypeError) as err:
        raise fail(
            "vgg16()", "weights", "None, a VGG16_Weights member or its name",
            describe(weights), "e.g. VGG16_Weights.IMAGENET1K_V1 or 'DEFAULT'",
        ) from err
    return vgg_from_torchvision(tv_vgg16(weights=resolved, progress=progress))


def _pool5_size(features: nn.Sequential, input_size: int) -> int:
    """Side of the last feature map for a square input, following each pool's rounding."""
    size = input_size
    for layer in features:
        if isinstance(layer, nn.MaxPool2d):
            k, s, p = (_scalar(v) for v in (layer.kernel_size, layer.stride, layer.padding))
            span = size + 2 * p - k
            out = (-(-span // s) if layer.ceil_mode else span // s) + 1
            # PyTorch's rule: with ceil_mode the last window must start inside the input.
            if layer.ceil_mode and (out - 1) * s >= size + p:
                out -= 1
            size = out
            if size < 1:
                raise fail(
                    "CourseVGG()", "input_size", "a size that leaves pool5 at least 1x1",
                    repr(input_size), "use a larger input_size",
                )
    return size


def _scalar(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def _check_dropout(where: str, dropout: float) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise fail(where, "dropout", "a probability in [0, 1)", describe(dropout), "e.g. 0.5")


def _check_feature_info(
    where: str, features: nn.Sequential, feature_info: Sequence[FeatureInfo]
) -> None:
    if not isinstance(features, nn.Sequential):
        raise fail(where, "features", "an nn.Sequential", describe(features), "", error=TypeError)
    names = {name for name, _ in features.named_children()}
    if not feature_info or any(f.get("name") not in names for f in feature_info):
        raise fail(
            where, "feature_info", "entries naming children of 'features'",
            describe(list(feature_info)), "pass what make_layers() returned",
        )
