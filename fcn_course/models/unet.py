"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), at the course's scale.

Chapter 8, "What came after FCN". FCN-8s adds coarse *class scores* from ``pool3`` and
``pool4`` to its upsampled predictions. U-Net keeps whole *feature maps* instead: a
contracting path (the encoder: two 3x3 convolutions, then a 2x2 max pool, repeated) and a
symmetric expanding path (the decoder) in which every step upsamples 2x, **concatenates**
the encoder's feature map of the same resolution, and convolves the two together. The
decoder step is :class:`UNetDecoderBlock`; the whole network is :func:`unet`.

Choices, and where they depart from the paper:

* The 3x3 convolutions are padded ('same'); the paper's are unpadded, so its output is
  smaller than its input and it crops every skip. Padding keeps every skip the size of the
  map it joins, up to the one pixel that odd sizes leave (below).
* Pools round up (``ceil_mode=True``), so a map of ``n`` pixels pools to ``ceil(n / 2)``,
  and even a 1x1 input keeps one pixel at every depth. The 2x upsampling then gives
  ``2 * ceil(n / 2)`` pixels, one too many when ``n`` is odd, and :func:`match_size` drops
  it at the bottom/right. That crop is exact, not a guess: pool window ``i`` covers input
  pixels ``2i`` and ``2i + 1``, and the up-convolution's pixel ``i`` writes exactly those
  two, so the two grids already agree at the top-left.
* The up-convolution is a learned 2x2 transposed convolution with stride 2 that halves the
  channels, as in the paper; ``upsampling="bilinear"`` uses fixed bilinear interpolation
  instead (no parameters, channels kept).
* Batch normalisation after every convolution (``batch_norm=True``, the default) lets the
  network train from scratch with Adam in a few epochs; the paper (2015) had none. With it,
  the convolutions have no bias (the normalisation's shift replaces it).
* Widths are the paper's ``(64, 128, 256, 512, 1024)`` divided by eight,
  ``(8, 16, 32, 64, 128)``: about 0.5 M parameters, and a training step on the CPU costs
  about as much as one of the course's FCN-8s (the decoder works at every resolution,
  full resolution included, where the FCN only adds class scores).

Sizes in shape comments are rounded up (``H/4`` means ``ceil(H / 4)``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from fcn_course._validation import check_choice, check_int, check_tensor, describe, fail

__all__ = [
    "UNET_WIDTHS",
    "UPSAMPLING_MODES",
    "DoubleConv",
    "UNet",
    "UNetDecoderBlock",
    "match_size",
    "unet",
]

#: Channels of the encoder's stages, from full resolution down to the bottleneck. Five
#: stages mean four pools: the bottleneck sees the image at 1/16 of its size.
UNET_WIDTHS: tuple[int, ...] = (8, 16, 32, 64, 128)

#: How a decoder step doubles the resolution: a learned 2x2 transposed convolution with
#: stride 2 (the paper's "up-convolution"), or fixed bilinear interpolation.
UPSAMPLING_MODES: tuple[str, ...] = ("transposed", "bilinear")


def match_size(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``x`` cropped (or zero-padded) at the bottom and right to ``size = (H, W)``.

    After a 2x upsampling the map has ``2 * ceil(n / 2)`` rows where the skip has ``n``
    (pools that round up) or ``2 * floor(n / 2)`` (pools that round down): at most one row
    too many or too few, always at the end, since both grids start at the top-left pixel.
    """
    check_tensor("match_size()", "x", x, ndim=(3, 4), shape_hint="(N, C, h, w) or (C, h, w)")
    if len(size) != 2:
        raise fail("match_size()", "size", "a pair (H, W)", describe(size), "e.g. skip.shape[-2:]")
    height, width = int(size[0]), int(size[1])
    x = x[..., :height, :width]  # crop what is too much
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h or pad_w:
        x = nn.functional.pad(x, (0, pad_w, 0, pad_h))  # pad what is missing, with zeros
    return x


class DoubleConv(nn.Sequential):
    """``conv1 -> bn1 -> relu1 -> conv2 -> bn2 -> relu2``: U-Net's two 3x3 convolutions.

    Padded, so ``(N, in_channels, H, W)`` becomes ``(N, out_channels, H, W)``. Without
    ``batch_norm`` the ``bn`` layers are left out and the convolutions get a bias.
    Parameters: ``9 * in * out + 9 * out * out`` weights, plus per convolution ``2 * out``
    for the normalisation's scale and shift (with ``batch_norm``) or ``out`` for the bias.
    """

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True) -> None:
        where = "DoubleConv()"
        check_int(where, "in_channels", in_channels, minimum=1)
        check_int(where, "out_channels", out_channels, minimum=1)
        _check_bool(where, "batch_norm", batch_norm)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for i in (1, 2):
            layers[f"conv{i}"] = nn.Conv2d(
                channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm
            )
            if batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(out_channels)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            channels = out_channels
        super().__init__(layers)


class UNetDecoderBlock(nn.Module):
    """One step of U-Net's expanding path: upsample 2x, concatenate the skip, two 3x3 convs.

    ``block(x, skip)`` with ``x`` of shape ``(N, in_channels, h, w)`` (the coarser map) and
    ``skip`` of shape ``(N, skip_channels, H, W)`` (the encoder's map at twice the
    resolution, ``H`` in ``{2h - 1, 2h, 2h + 1}``) returns ``(N, out_channels, H, W)``::

        up = self.up(x)                        # (N, C_up, 2h, 2w)
        up = match_size(up, skip.shape[-2:])   # (N, C_up, H, W)
        return self.conv(torch.cat([up, skip], dim=1))

    Args:
        in_channels: channels of ``x``.
        skip_channels: channels of ``skip``.
        out_channels: channels of the result (in U-Net, those of the skip).
        upsampling: ``"transposed"``: ``up`` is a 2x2 transposed convolution with stride 2
            from ``in_channels`` to ``C_up = in_channels // 2`` (the paper's up-convolution,
            which halves the channels); ``"bilinear"``: ``up`` is fixed bilinear
            interpolation and ``C_up = in_channels``.
        batch_norm: batch normalisation in the :class:`DoubleConv`.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        *,
        upsampling: str = "transposed",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        where = "UNetDecoderBlock()"
        check_int(where, "in_channels", in_channels, minimum=1)
        check_int(where, "skip_channels", skip_channels, minimum=1)
        check_int(where, "out_channels", out_channels, minimum=1)
        check_choice(where, "upsampling", upsampling, UPSAMPLING_MODES)
        _check_bool(where, "batch_norm", batch_norm)
        self.in_channels = in_channels
        self.skip_channels = skip_channels
        self.out_channels = out_channels
        self.upsampling = upsampling
        self.up: nn.Module
        if upsampling == "transposed":
            if in_channels < 2:
                raise fail(
                    where, "in_channels", "at least 2 with upsampling='transposed' (the "
                    "up-convolution halves the channels)", repr(in_channels),
                    "use more channels or upsampling='bilinear'",
                )
            up_channels = in_channels // 2
            self.up = nn.ConvTranspose2d(in_channels, up_channels, kernel_size=2, stride=2)
        else:
            up_channels = in_channels
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up_channels = up_channels
        self.conv = DoubleConv(up_channels + skip_channels, out_channels, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        where = "UNetDecoderBlock.forward()"
        check_tensor(where, "x", x, ndim=4, shape_hint="(N, C, h, w)",
                     channels=self.in_channels, floating=True)
        check_tensor(where, "skip", skip, ndim=4, shape_hint="(N, C_skip, H, W)",
                     channels=self.skip_channels, floating=True)
        rows, cols = x.shape[-2:]
        if skip.shape[0] != x.shape[0] or any(
            abs(2 * n - big) > 1 for n, big in ((rows, skip.shape[-2]), (cols, skip.shape[-1]))
        ):
            raise fail(
                where, "skip", f"a batch of {x.shape[0]} maps of about twice the size of x "
                f"({2 * rows}x{2 * cols}, give or take one pixel)", describe(skip),
                "pass the encoder's feature map from just before the matching pool",
            )
        up = self.up(x)  # (N, C_up, 2h, 2w)
        up = match_size(up, skip.shape[-2:])  # (N, C_up, H, W): one row/column cut or added
        h = torch.cat([up, skip], dim=1)  # (N, C_up + C_skip, H, W)
        return self.conv(h)  # (N, C_out, H, W)

    def extra_repr(self) -> str:
        return f"upsampling={self.upsampling!r}"


class UNet(nn.Module):
    """U-Net: an encoder of :class:`DoubleConv` stages and a decoder of
    :class:`UNetDecoderBlock` steps, then a 1x1 convolution to class scores.

    ``encoder[0]`` works at full resolution; ``encoder[s]`` (``s >= 1``) max-pools 2x2 and
    applies a :class:`DoubleConv`, so it works at ``1/2**s``. ``decoder[0]`` joins the
    bottleneck with ``encoder[-2]``'s output, and so on up to ``encoder[0]``'s; ``score``
    maps the last ``widths[0]`` channels to ``num_classes``. ``model(x)`` maps
    ``(N, in_channels, H, W)`` to ``(N, num_classes, H, W)`` for any ``H, W >= 1``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        widths: Sequence[int] = UNET_WIDTHS,
        upsampling: str = "transposed",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        where = "UNet()"
        check_int(where, "num_classes", num_classes, minimum=1)
        check_int(where, "in_channels", in_channels, minimum=1)
        widths = _check_widths(where, widths)
        check_choice(where, "upsampling", upsampling, UPSAMPLING_MODES)
        _check_bool(where, "batch_norm", batch_norm)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.widths = widths
        self.upsampling = upsampling

        stages: list[nn.Module] = [DoubleConv(in_channels, widths[0], batch_norm=batch_norm)]
        for previous, width in pairwise(widths):
            stages.append(nn.Sequential(OrderedDict(
                pool=nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True),
                conv=DoubleConv(previous, width, batch_norm=batch_norm),
            )))
        self.encoder = nn.ModuleList(stages)

        blocks: list[UNetDecoderBlock] = []
        channels = widths[-1]
        for skip in reversed(widths[:-1]):
            blocks.append(UNetDecoderBlock(
                channels, skip, skip, upsampling=upsampling, batch_norm=batch_norm,
            ))
            channels = skip
        self.decoder = nn.ModuleList(blocks)
        self.score = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(
            "UNet.forward()", "x", x, ndim=4, shape_hint=f"(N, {self.in_channels}, H, W)",
            channels=self.in_channels, floating=True,
        )
        skips: list[torch.Tensor] = []
        h = x
        for stage in self.encoder:
            h = stage(h)  # encoder[s]: (N, widths[s], H/2**s, W/2**s)
            skips.append(h)
        h = skips.pop()  # the bottleneck, (N, widths[-1], H/2**D, W/2**D) for D pools
        for block in self.decoder:
            h = block(h, skips.pop())  # (N, widths[s], H/2**s, W/2**s), s = D-1, ..., 0
        return self.score(h)  # (N, num_classes, H, W)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, widths={self.widths}, "
            f"upsampling={self.upsampling!r}"
        )


def unet(
    *,
    num_classes: int = 7,
    in_channels: int = 3,
    widths: Sequence[int] = UNET_WIDTHS,
    upsampling: str = "transposed",
    batch_norm: bool = True,
) -> UNet:
    """U-Net at the course's scale. ``model(x)`` maps ``(N, 3, H, W)`` to logits
    ``(N, num_classes, H, W)`` for any ``H, W >= 1`` (chapter 8, "What came after FCN").

    Args:
        num_classes: segmentation classes; 7 for the course's shapes (6 shapes + background).
        widths: channels of the encoder's stages, full resolution first; ``len(widths) - 1``
            pools. The paper's are ``(64, 128, 256, 512, 1024)``.
        upsampling: ``"transposed"`` (the paper's learned 2x2 up-convolution) or
            ``"bilinear"`` (fixed interpolation), see :class:`UNetDecoderBlock`.
        batch_norm: batch normalisation after every 3x3 convolution.
    """
    where = "unet()"
    check_int(where, "num_classes", num_classes, minimum=1, fix="e.g. 7 for the course's shapes")
    return UNet(
        num_classes=num_classes, in_channels=in_channels, widths=widths, upsampling=upsampling,
        batch_norm=batch_norm,
    )


def _check_widths(where: str, widths: Any) -> tuple[int, ...]:
    if isinstance(widths, str) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise fail(
            where, "widths", "at least two channel counts, one per encoder stage",
            describe(widths), f"e.g. widths={UNET_WIDTHS}", error=TypeError,
        )
    for w in widths:
        check_int(where, "widths", w, minimum=1, fix=f"e.g. widths={UNET_WIDTHS}")
    return tuple(widths)


def _check_bool(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(where, name, "True or False", describe(value), "", error=TypeError)
    return value
