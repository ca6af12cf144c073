"""Checkers for the exercise on transposed convolution (chapter "Transposed convolution")."""

from __future__ import annotations

from collections.abc import Callable

import torch

from fcn_course.checks._core import Case, Mistake, run_checks
from fcn_course.models.upsample import (
    bilinear_kernel,
    conv_transpose2d,
    conv_transpose_output_size,
)

__all__ = [
    "check_bilinear_kernel",
    "check_conv_transpose2d",
    "check_conv_transpose_output_size",
]

# (size, kernel_size, stride, padding): strides 1..32, with and without padding, kernel 1,
# and the FCN upsamplers (k=4 s=2, k=16 s=8, k=64 s=32).
_SIZE_CASES = [
    Case(kwargs={"size": n, "kernel_size": k, "stride": s, "padding": p})
    for n, k, s, p in [
        (5, 3, 1, 0),
        (4, 4, 2, 0),
        (4, 4, 2, 1),
        (7, 3, 2, 1),
        (10, 16, 8, 4),
        (3, 64, 32, 16),
        (6, 1, 3, 0),
        (9, 5, 3, 2),
        (1, 7, 1, 3),
        (12, 64, 32, 0),
    ]
]


def _size_without_padding(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    return (size - 1) * stride + kernel_size


def _size_padding_once(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    return (size - 1) * stride - padding + kernel_size


def _size_n_times_stride(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    return size * stride - 2 * padding + kernel_size


def _size_convolution(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel_size) // stride + 1


_SIZE_MISTAKES = [
    Mistake(
        "the output size is missing the -2p term (padding ignored)",
        _size_without_padding,
        "padding of a transposed convolution removes p rows from each border of the output: "
        "subtract 2 * padding.",
    ),
    Mistake(
        "padding subtracted once instead of twice",
        _size_padding_once,
        "padding is cut from both borders, so the output loses 2 * padding, not padding.",
    ),
    Mistake(
        "size * stride used where (size - 1) * stride belongs",
        _size_n_times_stride,
        "n inputs placed stride apart span (n - 1) * stride + 1 positions; the last one then "
        "paints a kernel of kernel_size, giving (n - 1) * stride + kernel_size before padding.",
    ),
    Mistake(
        "this is the formula of an ordinary (forward) convolution",
        _size_convolution,
        "a transposed convolution inverts the convolution's size map: solve "
        "n_in = (n_out + 2p - k) / s + 1 for n_out.",
    ),
]


def check_conv_transpose_output_size(student: Callable[..., int]) -> None:
    """Check a student's ``conv_transpose_output_size(size, kernel_size, stride, padding)``."""
    __tracebackhide__ = True
    run_checks(
        "conv_transpose_output_size",
        student,
        lambda **kw: conv_transpose_output_size(**kw),
        _SIZE_CASES,
        reference_name="fcn_course.models.conv_transpose_output_size",
        mistakes=_SIZE_MISTAKES,
        general_hint="place the n inputs stride apart, paint a kernel at each, then remove "
        "padding from both borders.",
        atol=0,
        rtol=0,
    )


_KERNEL_CASES = [
    Case(kwargs={"in_channels": i, "out_channels": o, "kernel_size": k})
    for i, o, k in [
        (1, 1, 4),
        (1, 1, 3),
        (2, 2, 4),
        (3, 3, 5),
        (2, 3, 4),
        (3, 2, 2),
        (1, 1, 1),
        (4, 4, 16),
        (21, 21, 64),
    ]
]


def _tent(kernel_size: int, centre: float, factor: float) -> torch.Tensor:
    t = torch.arange(kernel_size, dtype=torch.float64)
    tent = 1 - (t - centre).abs() / factor
    return torch.outer(tent, tent).float()


def _on_diagonal(in_channels: int, out_channels: int, filt: torch.Tensor) -> torch.Tensor:
    weight = torch.zeros(in_channels, out_channels, *filt.shape)
    for c in range(min(in_channels, out_channels)):
        weight[c, c] = filt
    return weight


def _kernel_centre_half_pixel_off(in_channels: int, out_channels: int, kernel_size: int):
    factor = (kernel_size + 1) // 2
    return _on_diagonal(in_channels, out_channels, _tent(kernel_size, factor - 1, factor))


def _kernel_centre_at_half_size(in_channels: int, out_channels: int, kernel_size: int):
    factor = (kernel_size + 1) // 2
    return _on_diagonal(in_channels, out_channels, _tent(kernel_size, kernel_size / 2, factor))


def _kernel_every_channel_pair(in_channels: int, out_channels: int, kernel_size: int):
    ref = bilinear_kernel(1, 1, kernel_size)[0, 0]
    return ref.expand(in_channels, out_channels, kernel_size, kernel_size).clone()


def _kernel_out_in_layout(in_channels: int, out_channels: int, kernel_size: int):
    return bilinear_kernel(out_channels, in_channels, kernel_size)


def _kernel_factor_floor(in_channels: int, out_channels: int, kernel_size: int):
    factor = max(kernel_size // 2, 1)
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    return _on_diagonal(in_channels, out_channels, _tent(kernel_size, centre, factor))


_KERNEL_MISTAKES = [
    Mistake(
        "the kernel's centre is off by half a pixel",
        _kernel_centre_half_pixel_off,
        "for an even kernel_size the centre lies between two taps: centre = factor - 0.5; "
        "only an odd kernel_size has its centre on a tap, at factor - 1.",
    ),
    Mistake(
        "the kernel's centre is at kernel_size / 2, one half pixel too far",
        _kernel_centre_at_half_size,
        "taps are numbered 0 .. k-1, so the middle is (k - 1) / 2: factor - 0.5 for even k, "
        "factor - 1 for odd k.",
    ),
    Mistake(
        "the filter is on every (input, output) channel pair, not only on the channel diagonal",
        _kernel_every_channel_pair,
        "upsampling must not mix channels: put the filter at weight[c, c] and leave "
        "weight[i, j] = 0 for i != j.",
    ),
    Mistake(
        "the weight has the layout (out_channels, in_channels, k, k) of nn.Conv2d",
        _kernel_out_in_layout,
        "nn.ConvTranspose2d stores its weight as (in_channels, out_channels, k, k): "
        "in_channels first.",
    ),
    Mistake(
        "factor computed as kernel_size // 2 instead of (kernel_size + 1) // 2",
        _kernel_factor_floor,
        "for odd kernel sizes the factor is (k + 1) // 2 (e.g. k = 3 upsamples by 2).",
    ),
]


def check_bilinear_kernel(student: Callable[..., torch.Tensor]) -> None:
    """Check a student's ``bilinear_kernel(in_channels, out_channels, kernel_size)``."""
    __tracebackhide__ = True
    run_checks(
        "bilinear_kernel",
        student,
        lambda **kw: bilinear_kernel(**kw),
        _KERNEL_CASES,
        reference_name="fcn_course.models.bilinear_kernel",
        mistakes=_KERNEL_MISTAKES,
        general_hint="build the 1-d tent 1 - |t - centre| / factor, take its outer product, "
        "and place it at weight[c, c] of a zero tensor of shape (in, out, k, k).",
    )


# (batch, C_in, C_out, H, W, kH, kW, stride, padding, bias): strides 1..3, padding 0..2,
# kernels 1..4 (one non-square), non-square inputs, with and without bias. The first case
# with several channels has C_in == C_out, so that reading the weight as (out, in) still
# runs and can be named; a 1-pixel input closes the list.
_TCONV_SHAPES = [
    (1, 1, 1, 3, 3, 2, 2, 1, 0, False),
    (1, 2, 2, 3, 4, 3, 3, 2, 0, False),
    (2, 2, 3, 4, 3, 3, 3, 1, 1, True),
    (1, 3, 2, 2, 5, 4, 4, 2, 1, False),
    (2, 1, 2, 3, 3, 1, 1, 3, 0, True),
    (1, 2, 1, 5, 2, 3, 3, 3, 2, True),
    (1, 2, 2, 4, 4, 4, 4, 2, 2, False),
    (1, 2, 3, 3, 4, 2, 3, 2, 1, True),
    (3, 3, 3, 2, 2, 4, 4, 3, 1, True),
    (1, 1, 1, 1, 1, 3, 3, 1, 1, False),
]


def _tconv_cases(seed: int = 0) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for n, c_in, c_out, h, w, kh, kw, stride, padding, with_bias in _TCONV_SHAPES:
        x = torch.randn(n, c_in, h, w, generator=gen)
        weight = torch.randn(c_in, c_out, kh, kw, generator=gen)
        bias = torch.randn(c_out, generator=gen) if with_bias else None
        cases.append(
            Case(args=(x, weight), kwargs={"bias": bias, "stride": stride, "padding": padding})
        )
    return cases


def _scatter(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    spacing: int,
    place: int,
    crop: tuple[int, int],
) -> torch.Tensor:
    """A scatter with its own bugs: a canvas sized for inputs ``spacing`` apart, inputs put
    ``place`` apart, ``crop[0]`` rows and columns cut at the start and ``crop[1]`` at the end."""
    n, _, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    canvas = x.new_zeros(n, c_out, (h - 1) * spacing + kh, (w - 1) * spacing + kw)
    for i in range(kh):
        for j in range(kw):
            stamp = torch.einsum("nchw,co->nohw", x, weight[:, :, i, j])  # (N, C_out, H, W)
            canvas[:, :, i : i + (h - 1) * place + 1 : place,
                   j : j + (w - 1) * place + 1 : place] += stamp
    start, end = crop
    out = canvas[:, :, start : canvas.shape[2] - end, start : canvas.shape[3] - end]
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _tconv_out_in_layout(x, weight, bias=None, stride=1, padding=0):
    if weight.shape[0] != weight.shape[1]:  # such code fails or mixes up shapes: match nothing
        size = conv_transpose2d(x, weight, bias, stride, padding).shape
        return torch.full(size, float("nan"))
    return conv_transpose2d(x, weight.transpose(0, 1), bias, stride, padding)


def _tconv_kernel_flipped(x, weight, bias=None, stride=1, padding=0):
    return conv_transpose2d(x, weight.flip(2, 3), bias, stride, padding)


def _tconv_padding_kept(x, weight, bias=None, stride=1, padding=0):
    return conv_transpose2d(x, weight, bias, stride, 0)


def _tconv_padding_top_left_only(x, weight, bias=None, stride=1, padding=0):
    return _scatter(x, weight, bias, spacing=stride, place=stride, crop=(padding, 0))


def _tconv_padding_bottom_right_only(x, weight, bias=None, stride=1, padding=0):
    return _scatter(x, weight, bias, spacing=stride, place=stride, crop=(0, 2 * padding))


def _tconv_bias_omitted(x, weight, bias=None, stride=1, padding=0):
    return conv_transpose2d(x, weight, None, stride, padding)


def _tconv_stride_ignored(x, weight, bias=None, stride=1, padding=0):
    return _scatter(x, weight, bias, spacing=stride, place=1, crop=(padding, padding))


def _tconv_stride_plus_one(x, weight, bias=None, stride=1, padding=0):
    return _scatter(x, weight, bias, spacing=stride + 1, place=stride + 1, crop=(padding, padding))


_TCONV_MISTAKES = [
    Mistake(
        "the weight is read with the layout (out_channels, in_channels, k, k) of nn.Conv2d",
        _tconv_out_in_layout,
        "a transposed convolution's weight is (C_in, C_out, kH, kW): input channel c and "
        "output channel o meet at weight[c, o], not weight[o, c].",
    ),
    Mistake(
        "the kernel is flipped (this is a correlation-style gather, or a scatter of "
        "weight[k-1-a, k-1-b])",
        _tconv_kernel_flipped,
        "in the scatter view input pixel (i, j) adds x[i, j] * weight[a, b] at output "
        "(i * stride + a, j * stride + b): tap (a, b) of the kernel, not flipped.",
    ),
    Mistake(
        "the padding is not cut off (the output is the whole uncropped canvas)",
        _tconv_padding_kept,
        "padding in a transposed convolution removes `padding` rows and columns from each "
        "border of the canvas: return canvas[..., p : H_full - p, p : W_full - p].",
    ),
    Mistake(
        "the padding is cut from the top and left only",
        _tconv_padding_top_left_only,
        "cut `padding` from both ends of each axis: canvas[..., p : H_full - p, p : W_full - p].",
    ),
    Mistake(
        "the padding is cut from the bottom and right only (the output window starts at 0)",
        _tconv_padding_bottom_right_only,
        "the output window starts at row and column `padding` of the canvas, not at 0: "
        "canvas[..., p : p + H_out, p : p + W_out].",
    ),
    Mistake(
        "the bias is omitted",
        _tconv_bias_omitted,
        "when bias is given, add bias[o] to every pixel of output channel o after cropping: "
        "out + bias.view(1, -1, 1, 1).",
    ),
    Mistake(
        "the inputs are placed 1 apart instead of `stride` apart",
        _tconv_stride_ignored,
        "input pixel (i, j) paints its kernel with the top-left corner at "
        "(i * stride, j * stride).",
    ),
    Mistake(
        "the inputs are placed stride + 1 apart (stride zeros inserted between inputs "
        "instead of stride - 1)",
        _tconv_stride_plus_one,
        "inputs sit `stride` apart: between two neighbours there are stride - 1 zeros, so "
        "input i lands at row i * stride.",
    ),
]


def check_conv_transpose2d(student: Callable[..., torch.Tensor]) -> None:
    """Check a student's ``conv_transpose2d(x, weight, bias=None, stride=1, padding=0)``."""
    __tracebackhide__ = True
    run_checks(
        "conv_transpose2d",
        student,
        lambda *args, **kw: conv_transpose2d(*args, **kw),
        _tconv_cases(),  # fresh tensors each time: an answer that edits x in place harms nothing
        reference_name="fcn_course.models.conv_transpose2d",
        mistakes=_TCONV_MISTAKES,
        general_hint="start from a zero canvas of (H - 1) * stride + kH by (W - 1) * stride + kW; "
        "every input pixel (i, j) adds x[:, :, i, j] times the kernel (mixing channels through "
        "weight[c_in, c_out]) at (i * stride, j * stride); cut `padding` from both borders; "
        "add the bias.",
        atol=1e-4,
        rtol=1e-4,
    )
