"""Transposed convolution, its output-size arithmetic and the bilinear upsampling kernel.

The book's chapter "Transposed convolution" derives everything in this file; exercise 03
(``exercises/03_transposed_convolution.ipynb``) asks students to rebuild
:func:`conv_transpose_output_size`, :func:`conv_transpose2d` and :func:`bilinear_kernel` and
is checked against them.
"""

from __future__ import annotations

import torch
from torch import nn

from fcn_course._validation import check_int, check_tensor, describe, fail

__all__ = [
    "BilinearUpsample",
    "bilinear_kernel",
    "bilinear_kernel_size",
    "conv_transpose2d",
    "conv_transpose_output_size",
    "init_bilinear_",
]


def conv_transpose_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Length of a transposed convolution's output along one axis.

    ``(size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1``:
    each of the ``size`` inputs is spread ``stride`` apart, the last one paints a kernel of
    extent ``dilation * (kernel_size - 1) + 1``, and ``padding`` is cut from both ends.
    It is the inverse of the convolution formula ``floor((n + 2p - d(k-1) - 1) / s) + 1``.
    """
    where = "conv_transpose_output_size()"
    check_int(where, "size", size, minimum=1, fix="pass the input length along one axis")
    check_int(where, "kernel_size", kernel_size, minimum=1)
    check_int(where, "stride", stride, minimum=1)
    check_int(where, "padding", padding, minimum=0)
    check_int(where, "dilation", dilation, minimum=1)
    check_int(where, "output_padding", output_padding, minimum=0)
    if output_padding >= max(stride, dilation):
        raise fail(
            where,
            "output_padding",
            f"a value smaller than max(stride, dilation) = {max(stride, dilation)}",
            repr(output_padding),
            "output_padding only picks between the sizes a strided convolution maps to one size",
        )
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise fail(
            where,
            "padding",
            f"at most {((size - 1) * stride + dilation * (kernel_size - 1) + output_padding) // 2}"
            " so that the output is not empty",
            repr(padding),
            "use less padding or a larger input",
        )
    return out


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> torch.Tensor:
    """Transposed 2-d convolution written from scratch; equals ``F.conv_transpose2d``.

    Every input pixel scatters a copy of the kernel, scaled by its value, into the output
    ("stamp and add"). Rather than loop over pixels we loop over the ``k * k`` kernel taps:
    tap ``(i, j)`` adds ``x`` (mixed across channels by ``weight[:, :, i, j]``) onto an output
    grid that starts at ``(i * dilation, j * dilation)`` and steps by ``stride``. The
    ``padding`` rows and columns are then cut from each border.

    Args:
        x: input ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out, kH, kW)``, the layout of ``nn.ConvTranspose2d.weight``
            (note: *in* channels first, the transpose of ``nn.Conv2d``).
        bias: optional ``(C_out,)``.
    """
    where = "conv_transpose2d()"
    check_tensor(where, "x", x, ndim=4, shape_hint="(N, C_in, H, W)", floating=True)
    check_tensor(where, "weight", weight, ndim=4, shape_hint="(C_in, C_out, kH, kW)", floating=True)
    if weight.shape[0] != x.shape[1]:
        raise fail(
            where,
            "weight",
            f"C_in = x.shape[1] = {x.shape[1]} in dim 0 (layout (C_in, C_out, kH, kW))",
            describe(weight),
            "a transposed convolution's weight is (in, out, kH, kW); for a Conv2d weight "
            "(out, in, kH, kW) use weight.transpose(0, 1)",
        )
    if bias is not None:
        check_tensor(where, "bias", bias, ndim=1, shape_hint="(C_out,)", floating=True)
        if bias.shape[0] != weight.shape[1]:
            raise fail(where, "bias", f"{weight.shape[1]} values (C_out)", describe(bias), "")
    n, _, h, w = x.shape
    c_out, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    out_h = conv_transpose_output_size(h, kh, stride, padding, output_padding, dilation)
    out_w = conv_transpose_output_size(w, kw, stride, padding, output_padding, dilation)

    # The uncropped canvas: every tap lands inside it, and it reaches far enough to hold the
    # padded window [padding, padding + out) even when output_padding exceeds padding.
    full_h = max((h - 1) * stride + dilation * (kh - 1) + 1, padding + out_h)
    full_w = max((w - 1) * stride + dilation * (kw - 1) + 1, padding + out_w)
    canvas = x.new_zeros(n, c_out, full_h, full_w)
    for i in range(kh):
        for j in range(kw):
            # (N, C_in, H, W) x (C_in, C_out) -> (N, C_out, H, W)
            stamp = torch.einsum("nchw,co->nohw", x, weight[:, :, i, j])
            top, left = i * dilation, j * dilation
            canvas[:, :, top : top + (h - 1) * stride + 1 : stride,
                   left : left + (w - 1) * stride + 1 : stride] += stamp
    out = canvas[:, :, padding : padding + out_h, padding : padding + out_w]
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out  # (N, C_out, out_h, out_w)


def bilinear_kernel_size(factor: int) -> int:
    """Kernel size of the paper's bilinear upsampler for an integer ``factor``: ``2f - f % 2``."""
    check_int("bilinear_kernel_size()", "factor", factor, minimum=1)
    return 2 * factor - factor % 2


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """The FCN paper's bilinear upsampling filter, on the channel diagonal, zeros elsewhere.

    For a kernel of size ``k`` the paper uses ``factor = (k + 1) // 2`` and a centre at
    ``factor - 1`` (odd ``k``) or ``factor - 0.5`` (even ``k``); the 1-d profile is the tent
    ``1 - |t - centre| / factor`` and the 2-d filter is its outer product. Used as the
    weight of a ``ConvTranspose2d`` with ``stride=factor`` it reproduces bilinear
    interpolation away from the border.

    Returns:
        float32 tensor ``(in_channels, out_channels, k, k)`` with the filter at
        ``[c, c]`` for ``c < min(in_channels, out_channels)``.
    """
    where = "bilinear_kernel()"
    check_int(where, "in_channels", in_channels, minimum=1)
    check_int(where, "out_channels", out_channels, minimum=1)
    check_int(
        where, "kernel_size", kernel_size, minimum=1,
        fix="for an upsampling factor f use kernel_size = 2 * f - f % 2",
    )
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    t = torch.arange(kernel_size, dtype=torch.float64)
    tent = 1 - (t - centre).abs() / factor  # (k,)
    filt = torch.outer(tent, tent).to(torch.float32)  # (k, k)
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    diag = torch.arange(min(in_channels, out_channels))
    weight[diag, diag] = filt
    return weight


def init_bilinear_(layer: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    """Fill a square ``ConvTranspose2d``'s weight with :func:`bilinear_kernel` (bias to zero)."""
    where = "init_bilinear_()"
    if not isinstance(layer, nn.ConvTranspose2d):
        raise fail(where, "layer", "an nn.ConvTranspose2d", describe(layer), "", error=TypeError)
    kh, kw = layer.kernel_size
    if kh != kw or layer.groups != 1:
        raise fail(
            where, "layer", "a square kernel and groups=1",
            f"kernel_size={layer.kernel_size}, groups={layer.groups}", "",
        )
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(layer.in_channels, layer.out_channels, kh))
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class BilinearUpsample(nn.Module):
    """Upsample by an integer ``factor`` with a bilinear-initialised transposed convolution.

    The output is exactly ``factor`` times the input (``padding = ceil((f - 1) / 2)`` with
    the paper's kernel size ``2f - f % 2``). With ``learnable=False`` the weight is frozen
    and the layer is fixed bilinear interpolation (away from the border); with
    ``learnable=True`` it starts there and is trained, as in FCN-16s/8s.
    """

    def __init__(self, channels: int, factor: int, *, learnable: bool = False) -> None:
        super().__init__()
        where = "BilinearUpsample()"
        check_int(where, "channels", channels, minimum=1)
        check_int(where, "factor", factor, minimum=1)
        self.factor = factor
        kernel_size = bilinear_kernel_size(factor)
        self.up = nn.ConvTranspose2d(
            channels, channels, kernel_size, stride=factor, padding=(factor - 1 + 1) // 2,
            bias=False,
        )
        init_bilinear_(self.up)
        self.up.weight.requires_grad_(learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(
            "BilinearUpsample.forward()", "x", x, ndim=4, shape_hint="(N, C, H, W)",
            channels=self.up.in_channels,
        )
        return self.up(x)  # (N, C, H * factor, W * factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, learnable={self.up.weight.requires_grad}"
