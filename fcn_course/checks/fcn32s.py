"""Checkers for the exercise on FCN-32s (chapter "FCN-32s"): the crop offset and the head.

``check_upscore_crop_offset`` compares a student's ``upscore_crop_offset(layers, upscore)``
with the coordinate-map algebra of :mod:`fcn_course.models.geometry`. ``check_fcn32s_head``
builds a student's ``FCN32sHead(in_channels, num_classes, crop_offset)``, inspects its two
layers as built, then loads the weights of the package's :func:`~fcn_course.models.fcn32s`
into it and compares its output on the backbone's ``fc7`` features with the full model's.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import sys
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from numbers import Integral, Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcn_course._validation import describe
from fcn_course.checks._core import Case, CheckFailure, Mistake, run_checks
from fcn_course.models.fcn import FCN32s, fcn32s
from fcn_course.models.geometry import AxisMap, chain, conv_map, conv_transpose_map, crop_offset
from fcn_course.models.upsample import bilinear_kernel
from fcn_course.models.vgg import course_vgg

__all__ = ["check_fcn32s_head", "check_upscore_crop_offset"]

_Layer = tuple[int, int, int]  # (kernel_size, stride, padding) of a convolution or a pool


# ----------------------------------------------------------------------------- task 1: offset


class _Layers(tuple):
    """A stack of ``(kernel_size, stride, padding)``; a long one prints by name in messages."""

    name: str

    def __new__(cls, layers: Iterable[_Layer], name: str = "") -> _Layers:
        stack = super().__new__(cls, (tuple(layer) for layer in layers))
        stack.name = name
        return stack

    def __repr__(self) -> str:
        if not self.name:
            return repr(list(self))
        head = ", ".join(repr(layer) for layer in self[:3])
        return f"[{head}, ... ({len(self)} layers: {self.name})]"


def _vgg_layers(convs: Sequence[int], first_padding: int, fc6: tuple[int, int]) -> list[_Layer]:
    """conv1_1 ... pool5 of a VGG (3x3 convolutions, 2x2 pools), then fc6, fc7, score_fr."""
    layers: list[_Layer] = []
    for stage, count in enumerate(convs):
        for i in range(count):
            layers.append((3, 1, first_padding if stage == 0 and i == 0 else 1))
        layers.append((2, 2, 0))
    return [*layers, (fc6[0], 1, fc6[1]), (1, 1, 0), (1, 1, 0)]


# The course's FCN-32s (fc6 3x3 padded 'same'; crop 16) and the paper's pad-100 VGG16 (19).
_COURSE_LAYERS = _vgg_layers((2, 2, 2, 2, 2), first_padding=1, fc6=(3, 1))
_PAPER_LAYERS = _vgg_layers((2, 2, 3, 3, 3), first_padding=100, fc6=(7, 0))

# Small stacks first, then the course's and the paper's. The order matters for diagnosis: at
# the first case where a typical mistake differs from the answer its value is a whole number
# that no other mistake gives there, so a student who rounded still gets the right diagnosis.
_OFFSET_CASES = [
    Case(args=(_Layers(layers, name), upscore))
    for layers, name, upscore in [
        ([(3, 1, 0), (3, 3, 0)], "", (5, 3)),
        ([(2, 2, 0)], "", (4, 2)),
        ([(3, 1, 0), (2, 2, 0)], "", (4, 2)),
        ([(3, 1, 1), (2, 2, 0), (3, 1, 1), (2, 2, 0)], "", (8, 4)),
        ([(3, 3, 0)], "", (5, 3)),
        ([(3, 1, 100), (2, 2, 0)], "", (4, 2)),
        (_COURSE_LAYERS, "the course's FCN-32s, conv1_1 to score_fr", (64, 32)),
        (_PAPER_LAYERS, "the paper's VGG16, conv1_1 padded by 100, to score_fr", (64, 32)),
    ]
]


def _reference_crop_offset(layers: Sequence[_Layer], upscore: tuple[int, int]) -> int:
    """Compose the layers' maps, then upscore's inverse map, and crop onto the input."""
    kernel_size, stride = upscore
    maps = [conv_map(k, s, p) for k, s, p in layers]
    path = chain([*maps, conv_transpose_map(kernel_size, stride)])
    return crop_offset(path.y, AxisMap())


def _score_offset(
    layers: Sequence[_Layer], *, padding: bool = True, scaled: bool = True, own_stride: bool = False
) -> Fraction:
    """``b`` of score_fr's map ``x = a * i + b``, computed right or with one typical slip."""
    stride, offset = 1, Fraction(0)
    for k, s, p in layers:
        if own_stride:
            stride *= s
        offset += (stride if scaled else 1) * (Fraction(k - 1, 2) - (p if padding else 0))
        if not own_stride:
            stride *= s
    return offset


def _number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def _offset_padding_ignored(layers: Sequence[_Layer], upscore: tuple[int, int]) -> int | float:
    return _number(Fraction(upscore[0] - 1, 2) - _score_offset(layers, padding=False))


def _offset_not_scaled(layers: Sequence[_Layer], upscore: tuple[int, int]) -> int | float:
    return _number(Fraction(upscore[0] - 1, 2) - _score_offset(layers, scaled=False))


def _offset_own_stride(layers: Sequence[_Layer], upscore: tuple[int, int]) -> int | float:
    return _number(Fraction(upscore[0] - 1, 2) - _score_offset(layers, own_stride=True))


def _offset_upscore_stride(layers: Sequence[_Layer], upscore: tuple[int, int]) -> int | float:
    return _number(Fraction(upscore[1] - 1, 2) - _score_offset(layers))


def _offset_sign_flipped(layers: Sequence[_Layer], upscore: tuple[int, int]) -> int | float:
    return _number(_score_offset(layers) - Fraction(upscore[0] - 1, 2))


_OFFSET_MISTAKES = [
    Mistake(
        "the padding is left out of the layers' offsets (crop off by the padding)",
        _offset_padding_ignored,
        "a layer padded by p starts its first window p pixels before the input: its output "
        "pixel 0 is centred at (k - 1) / 2 - p, not (k - 1) / 2.",
    ),
    Mistake(
        "the layers' offsets are added without the stride of the layers before them",
        _offset_not_scaled,
        "a layer's offset is measured in the pixels of its own input; to express it in input "
        "pixels multiply it by the product of the strides of all earlier layers.",
    ),
    Mistake(
        "each layer's offset is multiplied by a stride that includes the layer's own",
        _offset_own_stride,
        "update the running stride after adding the layer's offset: the offset lives on the "
        "layer's input grid, whose pixels are (stride of the earlier layers) input pixels apart.",
    ),
    Mistake(
        "upscore's own offset is taken from its stride, (stride - 1) / 2, not its kernel",
        _offset_upscore_stride,
        "upscore's pixel j sits at (j - (kernel_size - 1) / 2) / stride on score_fr's grid: "
        "the shift comes from the half-width of the kernel it paints.",
    ),
    Mistake(
        "the sign is flipped: this is where upscore's first pixel lies, not the crop",
        _offset_sign_flipped,
        "upscore pixel 0 lies at input coordinate -c; the crop is c, the number of leading "
        "pixels to drop so that what remains starts at input pixel 0.",
    ),
]


def _plain_int(value: Any) -> Any:
    """An integer of any integral type as a Python int; anything else unchanged."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    return value


def _require_int_results(
    func_name: str, student: Callable[..., Any], cases: Sequence[Case]
) -> None:
    """Fail clearly on a whole number returned as a float: an offset is used as an index."""
    __tracebackhide__ = True
    for number, case in enumerate(cases, start=1):
        try:
            got = student(*case.args, **dict(case.kwargs))
        except Exception:
            return  # run_checks reports a stub or an error, with its own message
        if isinstance(got, Real) and not isinstance(got, Integral) and float(got).is_integer():
            raise CheckFailure(
                f"{func_name} returned {describe(got)} ({type(got).__name__}) on case {number} "
                f"of {len(cases)}: {case.describe(func_name)}\n"
                "  expected an int: a crop offset is a number of pixels, used as an index\n"
                "hint: return int(...) of your result, or compute with integers and "
                "fractions.Fraction."
            )


def check_upscore_crop_offset(student: Callable[..., int]) -> None:
    """Check a student's ``upscore_crop_offset(layers, upscore)`` (chapter "FCN-32s").

    ``layers`` lists ``(kernel_size, stride, padding)`` from the input to ``score_fr``;
    ``upscore`` is ``(kernel_size, stride)`` of the unpadded transposed convolution. The
    answer is the crop that aligns ``upscore`` with the input, e.g. 19 for the paper's
    pad-100 VGG16 and ``upscore=(64, 32)``. Values are compared first (a whole float such as
    ``19.0`` counts there, so that a wrong formula is diagnosed), then the type: an int.
    """
    __tracebackhide__ = True
    verdict = io.StringIO()
    try:
        with contextlib.redirect_stdout(verdict):
            run_checks(
                "upscore_crop_offset",
                (lambda *args: _plain_int(student(*args))) if callable(student) else student,
                _reference_crop_offset,
                _OFFSET_CASES,
                reference_name="fcn_course.models.crop_offset",
                mistakes=_OFFSET_MISTAKES,
                general_hint="compose x = stride * i + (k - 1) / 2 - p from the input onwards "
                "(each offset times the stride of the layers before it) to get score_fr's "
                "x = a * i + b; upscore's pixel j then sits at x = j - (k_up - 1) / 2 + b, so "
                "the crop is (k_up - 1) / 2 - b.",
                atol=0,
                rtol=0,
            )
    except BaseException:
        sys.stdout.write(verdict.getvalue())  # what the student's function printed, if anything
        raise
    _require_int_results("upscore_crop_offset", student, _OFFSET_CASES)
    sys.stdout.write(verdict.getvalue())


# ----------------------------------------------------------------------------- task 2: head

_FC7_WIDTH = 256  # the course classifier's fc6/fc7 width: score_fr's in_channels
_SEED = 4  # exercise 04


class _Head:
    """A ``score_fr``/``upscore`` pair, as :data:`_INSPECT` reads a head."""

    def __init__(self, score_fr: nn.Module, upscore: nn.Module) -> None:
        self.score_fr, self.upscore = score_fr, upscore


@functools.lru_cache(maxsize=4)
def _package_fcn32s(in_channels: int, num_classes: int) -> tuple[FCN32s, _Head]:
    """The package's FCN-32s (eval mode) on a course backbone whose fc7 is ``in_channels`` wide,
    and a copy of its ``score_fr`` and ``upscore`` as initialised.

    The model's ``score_fr`` is then drawn at random (seeded): at its zero initialisation
    every output would be 0 and any crop would pass.
    """
    with torch.random.fork_rng(devices=[]):  # building must not move the student's RNG
        torch.manual_seed(_SEED)
        model = fcn32s(num_classes=num_classes, backbone=course_vgg(fc_width=in_channels)).eval()
    fresh = _Head(copy.deepcopy(model.score_fr), copy.deepcopy(model.upscore))
    gen = torch.Generator().manual_seed(_SEED * 100 + num_classes)
    with torch.no_grad():  # fc7 features are small (~1e-3); these weights give scores ~1
        model.score_fr.weight.copy_(10 * torch.randn(model.score_fr.weight.shape, generator=gen))
        model.score_fr.bias.copy_(torch.randn(num_classes, generator=gen))
    return model, fresh


@functools.lru_cache(maxsize=4)
def _reference_model(in_channels: int, num_classes: int, crop: int) -> FCN32s:
    """:func:`_package_fcn32s`'s model, cropping at ``crop``.

    A crop other than the one the package derives (16) stands for a backbone of another
    geometry, e.g. 19 for the paper's VGG16 padded by 100.
    """
    model = _package_fcn32s(in_channels, num_classes)[0]
    if model.crop_offsets["upscore"] == (crop, crop):
        return model
    moved = copy.deepcopy(model)
    moved.crop_offsets["upscore"] = (crop, crop)
    return moved


def _layer_repr(head: Any, name: str) -> str:
    layer = getattr(head, name, None)
    if not isinstance(layer, nn.Module):
        return f"no layer: the head has no nn.Module attribute {name!r} ({describe(layer)})"
    return repr(layer)


def _zero_state(tensor: Any) -> str:
    if not isinstance(tensor, torch.Tensor):
        return "none"
    return "zeros" if torch.count_nonzero(tensor.detach()) == 0 else "non-zero"


def _score_init(head: Any) -> str:
    layer = getattr(head, "score_fr", None)
    weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
    return f"weight {_zero_state(weight)}, bias {_zero_state(bias)}"


_RANDOM_UPSCORE = "random values with negative entries, as PyTorch initialises by default"


def _upscore_init(head: Any) -> str:
    weight = getattr(getattr(head, "upscore", None), "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        return f"no 4-d weight ({describe(weight)})"
    w = weight.detach().float().cpu()
    i, o, k = w.shape[0], w.shape[1], w.shape[-1]
    bilinear = bilinear_kernel(i, o, k)
    if w.shape == bilinear.shape and torch.allclose(w, bilinear, atol=1e-6):
        return f"weight = bilinear_kernel({i}, {o}, {k})"
    if not w.any():
        return "weight all zeros"
    if w.shape == bilinear.shape and torch.allclose(w, bilinear[:1, :1].expand_as(w), atol=1e-6):
        return "weight = the bilinear filter on every (input, output) channel pair"
    if (w < 0).any():
        return f"weight = {_RANDOM_UPSCORE}"
    return f"weight = a non-negative filter that is not bilinear_kernel({i}, {o}, {k})"


_INSPECT: dict[str, Callable[[Any], str]] = {
    "score_fr": lambda head: _layer_repr(head, "score_fr"),
    "score_fr init": _score_init,
    "upscore": lambda head: _layer_repr(head, "upscore"),
    "upscore init": _upscore_init,
}


@functools.lru_cache(maxsize=1)
def _head_cases() -> tuple[list[Case], dict[tuple[Any, ...], torch.Tensor]]:
    """Inspections of the built layers, then outputs on fc7 features of odd-sized images.

    Returns the cases and the expected outputs, computed by the package's full FCN-32s on the
    images the features came from.
    """
    cases = [
        Case(kwargs={"in_channels": _FC7_WIDTH, "num_classes": 7, "crop_offset": 16,
                     "inspect": part})
        for part in _INSPECT
    ]
    expected: dict[tuple[Any, ...], torch.Tensor] = {}
    gen = torch.Generator().manual_seed(_SEED)
    # (batch, H, W, in_channels, num_classes, crop): odd sizes and one multiple of 32 with the
    # crop the package derives (None), and the paper's crop 19 so that a hard-coded 16 fails.
    for n, h, w, c_in, k, crop in [
        (2, 97, 131, _FC7_WIDTH, 7, None),
        (1, 33, 47, _FC7_WIDTH, 7, None),
        (1, 64, 96, 64, 3, None),
        (1, 45, 77, _FC7_WIDTH, 3, 19),
    ]:
        if crop is None:
            crop = _package_fcn32s(c_in, k)[0].crop_offsets["upscore"][0]
        model = _reference_model(c_in, k, crop)
        image = torch.rand(n, 3, h, w, generator=gen)
        with torch.no_grad():
            features = model.backbone.forward_features(image)["fc7"]  # (N, C7, H/32, W/32)
            expected[_output_key(c_in, k, crop, features, (h, w))] = model(image)  # (N, K, H, W)
        cases.append(Case(kwargs={"in_channels": c_in, "num_classes": k, "crop_offset": crop,
                                  "features": features, "size": (h, w)}))
    return cases, expected


def _output_key(
    in_channels: int, num_classes: int, crop_offset: int, features: torch.Tensor, size: Any
) -> tuple[Any, ...]:
    return (in_channels, num_classes, crop_offset, tuple(features.shape), tuple(size))


def _reference_head(
    *, in_channels: int, num_classes: int, crop_offset: int, inspect: str | None = None,
    features: torch.Tensor | None = None, size: tuple[int, int] | None = None,
) -> Any:
    if inspect is not None:
        return _INSPECT[inspect](_package_fcn32s(in_channels, num_classes)[1])
    assert features is not None and size is not None
    return _head_cases()[1][_output_key(in_channels, num_classes, crop_offset, features, size)]


def _student_head(head_class: Callable[..., Any]) -> Callable[..., Any]:
    def run(
        *, in_channels: int, num_classes: int, crop_offset: int, inspect: str | None = None,
        features: torch.Tensor | None = None, size: tuple[int, int] | None = None,
    ) -> Any:
        head = head_class(in_channels=in_channels, num_classes=num_classes, crop_offset=crop_offset)
        if inspect is not None:
            return _INSPECT[inspect](head)
        assert features is not None and size is not None
        model = _reference_model(in_channels, num_classes, crop_offset)
        for name in ("score_fr", "upscore"):  # the package's weights, so outputs can agree
            getattr(head, name).load_state_dict(getattr(model, name).state_dict())
        with torch.no_grad():
            return head(features.clone(), size)

    return run


# A mistake's implementation gets every case; on a case it says nothing about it returns
# this 0-d NaN tensor, which equals no answer: not a string, not an output (shape, NaN), and
# unlike a plain object it never meets ``==`` with an array, which would not give a bool.
_NOT_THIS_CASE = torch.tensor(float("nan"))


def _layer_mistake(
    part: str, build: Callable[[int, int], nn.Module]
) -> Callable[..., Any]:
    def implementation(*, in_channels: int, num_classes: int, inspect: str | None = None,
                       **_: Any) -> Any:
        if inspect != part:
            return _NOT_THIS_CASE
        return repr(build(in_channels, num_classes))

    return implementation


def _init_mistake(part: str, answer: str) -> Callable[..., Any]:
    def implementation(*, inspect: str | None = None, **_: Any) -> Any:
        return answer if inspect == part else _NOT_THIS_CASE

    return implementation


def _output_mistake(
    crop: Callable[[torch.Tensor, int, tuple[int, int]], torch.Tensor],
) -> Callable[..., Any]:
    """A wrong crop of the package's (uncropped) upscore output."""

    def implementation(*, in_channels: int, num_classes: int, crop_offset: int,
                       features: torch.Tensor | None = None, size: Any = None, **_: Any) -> Any:
        if features is None:
            return _NOT_THIS_CASE
        model = _reference_model(in_channels, num_classes, crop_offset)
        with torch.no_grad():
            up = model.upscore(model.score_fr(features))  # (N, K, 32 * H/32 + 32, ...)
        return crop(up, crop_offset, tuple(size))

    return implementation


def _crop_at(up: torch.Tensor, top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    return up[..., top : top + size[0], left : left + size[1]]


_HEAD_MISTAKES = [
    Mistake(
        "score_fr has no bias",
        _layer_mistake("score_fr", lambda c, k: nn.Conv2d(c, k, 1, bias=False)),
        "the paper's score layers are 1x1 convolutions with a bias: nn.Conv2d(in_channels, "
        "num_classes, kernel_size=1).",
    ),
    Mistake(
        "score_fr is not zero-initialised (PyTorch draws random weights by default)",
        _init_mistake("score_fr init", "weight non-zero, bias non-zero"),
        "set both score_fr.weight and score_fr.bias to zero (nn.init.zeros_): a new head then "
        "predicts nothing until trained, and FCN-16s can start exactly from FCN-32s.",
    ),
    Mistake(
        "score_fr's weight is zeroed but its bias is not",
        _init_mistake("score_fr init", "weight zeros, bias non-zero"),
        "zero score_fr.bias as well: nn.init.zeros_(self.score_fr.bias).",
    ),
    Mistake(
        "upscore keeps a bias (nn.ConvTranspose2d has bias=True by default)",
        _layer_mistake("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 64, stride=32)),
        "fixed bilinear interpolation adds nothing: pass bias=False.",
    ),
    Mistake(
        "upscore's kernel_size is the factor 32, not 2 * factor = 64",
        _layer_mistake("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 32, stride=32,
                                                                   bias=False)),
        "a bilinear upsampler by f needs a kernel of 2f (each output pixel blends two input "
        "pixels): kernel_size=64, stride=32.",
    ),
    Mistake(
        "upscore's kernel_size and stride are swapped",
        _layer_mistake("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 32, stride=64,
                                                                   bias=False)),
        "the stride is the upsampling factor (32), the kernel twice that (64).",
    ),
    Mistake(
        "upscore is padded (padding=16, the exact-32x layer); FCN-32s pads nothing and crops",
        _layer_mistake("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 64, stride=32,
                                                                   padding=16, bias=False)),
        "leave padding=0: the crop in forward does the alignment, with the offset derived "
        "from the layers (crop_offset).",
    ),
    Mistake(
        "upscore is initialised randomly instead of bilinear",
        _init_mistake("upscore init", f"weight = {_RANDOM_UPSCORE}"),
        "fill upscore.weight with bilinear_kernel(num_classes, num_classes, 64), inside "
        "torch.no_grad() (or use fcn_course.models.init_bilinear_).",
    ),
    Mistake(
        "upscore is zero-initialised like score_fr",
        _init_mistake("upscore init", "weight all zeros"),
        "only the score layer starts at zero; upscore starts as bilinear interpolation: "
        "bilinear_kernel(num_classes, num_classes, 64).",
    ),
    Mistake(
        "upscore's bilinear filter is on every channel pair, not only the channel diagonal",
        _init_mistake("upscore init",
                      "weight = the bilinear filter on every (input, output) channel pair"),
        "upsampling must not mix classes: bilinear_kernel puts the filter at [c, c] only.",
    ),
    Mistake(
        "the output is not cropped (upscore's full output is returned)",
        _output_mistake(lambda up, c, size: up),
        "upscore's output is 32 * h + 32 pixels tall; crop it to the input size with "
        "[..., c:c + H, c:c + W].",
    ),
    Mistake(
        "cropped from the top-left corner (offset 0) instead of at crop_offset",
        _output_mistake(lambda up, c, size: _crop_at(up, 0, 0, size)),
        "upscore's pixel 0 lies crop_offset pixels before the image: start the crop at "
        "crop_offset, [..., c:c + H, c:c + W].",
    ),
    Mistake(
        "cropped at the bottom-right corner instead of at crop_offset",
        _output_mistake(lambda up, c, size: up[..., -size[0]:, -size[1]:]),
        "the crop starts crop_offset pixels from the top-left: [..., c:c + H, c:c + W].",
    ),
    Mistake(
        "cropped at the centre instead of at crop_offset",
        _output_mistake(lambda up, c, size: _crop_at(
            up, (up.shape[-2] - size[0]) // 2, (up.shape[-1] - size[1]) // 2, size)),
        "the margin is not split evenly: the offset comes from the geometry, and what is left "
        "over at the far end depends on H modulo 32. Crop [..., c:c + H, c:c + W].",
    ),
    Mistake(
        "the crop offset is hard-coded to the paper's 19 instead of using crop_offset",
        _output_mistake(lambda up, c, size: _crop_at(up, 19, 19, size)),
        "19 belongs to the paper's VGG16 padded by 100; use the crop_offset given to "
        "__init__ (16 for the course's FCN-32s).",
    ),
    Mistake(
        "the crop offset is hard-coded to 16 instead of using crop_offset",
        _output_mistake(lambda up, c, size: _crop_at(up, 16, 16, size)),
        "16 is right for the course's backbone only; use the crop_offset given to __init__.",
    ),
    Mistake(
        "size is read as (W, H): rows and columns swapped",
        _output_mistake(lambda up, c, size: _crop_at(up, c, c, (size[1], size[0]))),
        "size is (H, W), like x.shape[-2:]: rows first.",
    ),
    Mistake(
        "the scores are resized with F.interpolate instead of cropped",
        _output_mistake(lambda up, c, size: F.interpolate(
            up, size=size, mode="bilinear", align_corners=False)),
        "resizing stretches the map and moves every score; upscore has already upsampled, "
        "so only a crop at crop_offset is left to do.",
    ),
]


def check_fcn32s_head(student: Callable[..., nn.Module]) -> None:
    """Check a student's ``FCN32sHead(in_channels, num_classes, crop_offset)`` class.

    The head must have ``score_fr`` (zero-initialised 1x1 ``Conv2d``) and ``upscore``
    (bias-free ``ConvTranspose2d``, kernel 64, stride 32, bilinear), and ``head(features,
    size)`` must map fc7 ``features`` ``(N, C, h, w)`` to scores ``(N, K, H, W)`` for an
    input of ``size = (H, W)``. Compared with the package's ``fcn32s``, whose weights are
    loaded into the student's layers (chapter "FCN-32s").
    """
    __tracebackhide__ = True
    if isinstance(student, nn.Module):
        raise TypeError(
            "check of FCN32sHead: expected your class FCN32sHead, got an instance of "
            f"{type(student).__name__}; pass the class itself, e.g. "
            "check_fcn32s_head(FCN32sHead): the check builds heads of several sizes"
        )
    cases, _ = _head_cases()
    run_checks(
        "FCN32sHead",
        _student_head(student) if callable(student) else student,
        _reference_head,
        cases,
        reference_name="fcn_course.models.fcn32s",
        mistakes=_HEAD_MISTAKES,
        general_hint="score_fr = nn.Conv2d(in_channels, num_classes, 1), zero-initialised; "
        "upscore = nn.ConvTranspose2d(num_classes, num_classes, 64, stride=32, bias=False) "
        "with bilinear weights; forward: upscore(score_fr(features)) cropped to "
        "[..., c:c + H, c:c + W] with c = crop_offset.",
    )
