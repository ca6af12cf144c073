"""Coordinate maps between layers, and the crop offsets that align FCN score maps.

The FCN paper's Caffe code never types a crop offset: ``coord_map.py`` derives each one
from the layer geometry. This file is that algebra, for PyTorch modules; the chapter
"FCN-32s" derives it on paper and the chapter "Skip connections" uses it for FCN-16s/8s.

Along one axis a layer sends output pixel ``x_out`` to the centre of its receptive field in
the layer's input, an affine map ``x_in = a * x_out + b``:

* convolution or pooling with kernel ``k``, stride ``s``, padding ``p``, dilation ``d``:
  ``a = s`` and ``b = d * (k - 1) / 2 - p`` (the window of output 0 starts at ``-p`` and
  spans ``d * (k - 1)`` pixels, so its centre sits at ``d * (k - 1) / 2 - p``);
* transposed convolution with the same parameters: the inverse map, ``x_in = (x_out - b) / s``;
* element-wise layers (ReLU, dropout, batch norm): the identity.

Maps compose along a path, so every blob of a network gets one map into the coordinates of
the network's input; two blobs with the same scale are aligned by cropping the larger one by
an offset read off the two maps (:func:`crop_offset`). Arithmetic is exact (``Fraction``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import overload

from torch import nn

from fcn_course._validation import check_int, describe, fail

__all__ = [
    "AxisMap",
    "CoordMap",
    "chain",
    "conv_map",
    "conv_transpose_map",
    "crop_offset",
    "layer_map",
    "paper_crop_offsets",
]


def _fraction(value: int | float | Fraction) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(value)


@dataclass(frozen=True)
class AxisMap:
    """The affine map ``x_in = scale * x_out + offset`` along one axis (exact fractions)."""

    scale: Fraction = field(default_factory=lambda: Fraction(1))
    offset: Fraction = field(default_factory=lambda: Fraction(0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _fraction(self.scale))
        object.__setattr__(self, "offset", _fraction(self.offset))
        if self.scale <= 0:
            raise fail(
                "AxisMap()", "scale", "a positive number", repr(self.scale),
                "a layer's stride is positive",
            )

    def __call__(self, x: int | float | Fraction) -> Fraction:
        return self.scale * _fraction(x) + self.offset

    def compose(self, inner: AxisMap) -> AxisMap:
        """``self`` after ``inner``: ``x -> self(inner(x))``.

        If ``self`` maps blob A to the input and ``inner`` maps the next layer's output B
        to A, the result maps B to the input.
        """
        return AxisMap(self.scale * inner.scale, self.scale * inner.offset + self.offset)

    def inverse(self) -> AxisMap:
        """The map back: ``x_out = (x_in - offset) / scale``."""
        return AxisMap(1 / self.scale, -self.offset / self.scale)

    def __str__(self) -> str:
        return f"x_in = {self.scale} * x_out + {self.offset}"


@dataclass(frozen=True)
class CoordMap:
    """A pair of :class:`AxisMap`, rows (``y``) and columns (``x``)."""

    y: AxisMap = field(default_factory=AxisMap)
    x: AxisMap = field(default_factory=AxisMap)

    @classmethod
    def identity(cls) -> CoordMap:
        return cls(AxisMap(), AxisMap())

    @classmethod
    def square(cls, axis: AxisMap) -> CoordMap:
        """The same map along both axes."""
        return cls(axis, axis)

    def compose(self, inner: CoordMap) -> CoordMap:
        """``self`` after ``inner``, axis by axis (see :meth:`AxisMap.compose`)."""
        return CoordMap(self.y.compose(inner.y), self.x.compose(inner.x))

    def inverse(self) -> CoordMap:
        return CoordMap(self.y.inverse(), self.x.inverse())

    def __str__(self) -> str:
        return f"y: {self.y}; x: {self.x}"


def conv_map(kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> AxisMap:
    """Output-to-input map of a convolution or pooling: ``a = s``, ``b = d (k - 1) / 2 - p``."""
    where = "conv_map()"
    check_int(where, "kernel_size", kernel_size, minimum=1)
    check_int(where, "stride", stride, minimum=1)
    check_int(where, "padding", padding, minimum=0)
    check_int(where, "dilation", dilation, minimum=1)
    return AxisMap(Fraction(stride), Fraction(dilation * (kernel_size - 1), 2) - padding)


def conv_transpose_map(
    kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> AxisMap:
    """Output-to-input map of a transposed convolution: the inverse of :func:`conv_map`.

    ``output_padding`` only appends pixels at the far end, so it does not enter the map.
    """
    return conv_map(kernel_size, stride, padding, dilation).inverse()


_PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Identity,
    nn.Dropout, nn.Dropout2d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d,
)


def layer_map(module: nn.Module) -> CoordMap:
    """Output-to-input map of a PyTorch layer (an ``nn.Sequential`` composes its children).

    Knows ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``, ``AvgPool2d`` and element-wise
    layers (activations, dropout, normalisation). ``ceil_mode`` changes how many pixels a
    pool emits, not where they sit, so it does not enter the map.
    """
    where = "layer_map()"
    if isinstance(module, nn.Sequential):
        return chain(layer_map(m) for m in module)
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.MaxPool2d | nn.AvgPool2d):
        if isinstance(getattr(module, "padding", 0), str):
            raise fail(
                where, "module", "a layer with numeric padding", repr(module),
                "give the padding as ints (for 'same' with an odd kernel k, padding=k // 2)",
            )
        k, s, p = (_pair(module.kernel_size), _pair(module.stride), _pair(module.padding))
        d = _pair(getattr(module, "dilation", 1))
        make = conv_transpose_map if isinstance(module, nn.ConvTranspose2d) else conv_map
        return CoordMap(make(k[0], s[0], p[0], d[0]), make(k[1], s[1], p[1], d[1]))
    if isinstance(module, _PASS_THROUGH):
        return CoordMap.identity()
    raise fail(
        where, "module",
        "Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, an element-wise layer or an "
        "nn.Sequential of those",
        type(module).__name__,
        "layers such as AdaptiveAvgPool2d or Upsample have no fixed affine geometry; "
        "give the map by hand with conv_map()/conv_transpose_map()",
        error=TypeError,
    )


def chain(maps: Iterable[CoordMap | AxisMap]) -> CoordMap:
    """Compose the maps of a path of layers, listed from the input onwards.

    ``chain([m1, m2, m3]) = m1 ∘ m2 ∘ m3``: it sends the last layer's output pixels to the
    first layer's input. An :class:`AxisMap` stands for the same map on both axes.
    """
    total = CoordMap.identity()
    for m in maps:
        if isinstance(m, AxisMap):
            m = CoordMap.square(m)
        if not isinstance(m, CoordMap):
            raise fail(
                "chain()", "maps", "CoordMap or AxisMap items", describe(m), "", error=TypeError
            )
        total = total.compose(m)
    return total


@overload
def crop_offset(top: AxisMap, reference: AxisMap) -> int: ...
@overload
def crop_offset(top: CoordMap, reference: CoordMap) -> tuple[int, int]: ...
def crop_offset(
    top: AxisMap | CoordMap, reference: AxisMap | CoordMap
) -> int | tuple[int, int]:
    """How many leading pixels to crop from ``top`` so that it lines up with ``reference``.

    Both arguments map a blob's pixels to a common ancestor, usually the network input:
    ``x = a_t * i + b_t`` for pixel ``i`` of ``top`` and ``x = a_r * j + b_r`` for pixel ``j``
    of ``reference``. Cropping ``c`` pixels makes ``top[c + j]`` the new pixel ``j``, and it
    must sit where ``reference[j]`` sits for every ``j``::

        a_t * (c + j) + b_t = a_r * j + b_r   for all j
        =>  a_t = a_r   and   c = (b_r - b_t) / a_t

    So the two blobs need the same stride, and ``c`` must be a whole, non-negative number.
    For FCN-32s with the paper's ``pad=100``: ``upscore`` maps as ``x = i - 19`` and the
    image as ``x = j``, so ``c = 19``, the paper's crop.

    Returns:
        ``c`` for :class:`AxisMap` arguments, ``(c_y, c_x)`` for :class:`CoordMap` ones.
    """
    where = "crop_offset()"
    if isinstance(top, CoordMap) and isinstance(reference, CoordMap):
        return crop_offset(top.y, reference.y), crop_offset(top.x, reference.x)
    if not (isinstance(top, AxisMap) and isinstance(reference, AxisMap)):
        raise fail(
            where, "top, reference", "two AxisMap or two CoordMap",
            f"{type(top).__name__} and {type(reference).__name__}", "", error=TypeError,
        )
    if top.scale != reference.scale:
        raise fail(
            where, "reference", f"the same stride as top ({top.scale})", str(reference.scale),
            "upsample the coarser blob first; a crop can only shift, not rescale",
        )
    c = (reference.offset - top.offset) / top.scale
    if c.denominator != 1:
        raise fail(
            where, "top, reference", "pixel grids shifted by a whole number of pixels",
            f"a shift of {c} pixels",
            "no crop aligns grids that are off by a fraction of a pixel; use odd kernels with "
            "padding k // 2, or change a padding by one",
        )
    if c < 0:
        raise fail(
            where, "top", "a blob that extends at least as far as reference",
            f"an offset of {c}", f"crop the reference instead: swap the arguments (offset {-c})",
        )
    return int(c)


def paper_crop_offsets() -> dict[str, dict[str, int]]:
    """The crops of the paper's Caffe FCNs (VGG16, ``conv1_1`` padded by 100), derived.

    Rebuilds the paper's layer geometry and reads each crop off it: FCN-32s crops
    ``upscore`` by 19; FCN-16s crops ``score_pool4`` by 5 and ``upscore16`` by 27; FCN-8s
    crops ``score_pool4`` by 5, ``score_pool3`` by 9 and ``upscore8`` by 31. The course's
    FCNs pad ``fc6`` instead and get their own (smaller) offsets the same way.
    """
    conv3, pool = conv_map(3, padding=1), conv_map(2, stride=2)
    # VGG16: the first convolution padded by 100 so that fc6 (7x7, no padding) never runs
    # out of input; then blocks of 3x3 'same' convolutions closed by 2x2 pools.
    blocks = [[conv_map(3, padding=100), conv3, pool], [conv3, conv3, pool]]
    blocks += [[conv3, conv3, conv3, pool]] * 3
    pool3 = chain(m for block in blocks[:3] for m in block)
    pool4 = pool3.compose(chain(blocks[3]))
    pool5 = pool4.compose(chain(blocks[4]))
    score_fr = pool5.compose(chain([conv_map(7), conv_map(1), conv_map(1)]))  # fc6, fc7, score
    image = CoordMap.identity()

    upscore = score_fr.compose(chain([conv_transpose_map(64, 32)]))
    upscore2 = score_fr.compose(chain([conv_transpose_map(4, 2)]))
    score_pool4 = pool4.compose(chain([conv_map(1)]))
    # The sum lives on upscore2's grid: score_pool4 is cropped to it.
    upscore16 = upscore2.compose(chain([conv_transpose_map(32, 16)]))
    upscore_pool4 = upscore2.compose(chain([conv_transpose_map(4, 2)]))
    score_pool3 = pool3.compose(chain([conv_map(1)]))
    upscore8 = upscore_pool4.compose(chain([conv_transpose_map(16, 8)]))

    def c(top: CoordMap, reference: CoordMap) -> int:
        return crop_offset(top.y, reference.y)  # every layer is square: rows = columns

    return {
        "fcn32s": {"upscore": c(upscore, image)},
        "fcn16s": {"score_pool4": c(score_pool4, upscore2), "upscore16": c(upscore16, image)},
        "fcn8s": {
            "score_pool4": c(score_pool4, upscore2),
            "score_pool3": c(score_pool3, upscore_pool4),
            "upscore8": c(upscore8, image),
        },
    }


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])

