"""fcn_course.models.upsample against torch.nn.functional and the paper's formulas."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_course.models import (
    BilinearUpsample,
    bilinear_kernel,
    bilinear_kernel_size,
    conv_transpose2d,
    conv_transpose_output_size,
    init_bilinear_,
)

GEOMETRIES = [
    # (kernel, stride, padding, output_padding, dilation)
    (1, 1, 0, 0, 1),
    (3, 1, 1, 0, 1),
    (3, 2, 1, 1, 1),
    (4, 2, 1, 0, 1),
    (5, 3, 2, 2, 1),
    (3, 2, 0, 1, 2),
    (16, 8, 4, 0, 1),
    (64, 32, 0, 0, 1),
    (2, 3, 3, 2, 1),
]


@pytest.mark.parametrize(("k", "s", "p", "op", "d"), GEOMETRIES)
def test_conv_transpose2d_equals_torch(k: int, s: int, p: int, op: int, d: int) -> None:
    gen = torch.Generator().manual_seed(k * 100 + s)
    x = torch.randn(2, 3, 5, 7, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 4, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64)
    expected = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, dilation=d)
    got = conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, dilation=d)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)


def test_conv_transpose2d_gradients_match_torch() -> None:
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    conv_transpose2d(x, w, stride=2, padding=1).square().sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    F.conv_transpose2d(x, w, stride=2, padding=1).square().sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "op", "d"),
    [(*c, 0, 1) for c in itertools.product([1, 4, 7], [1, 3, 4], [1, 2, 3], [0, 1])]
    + [(5, 3, 2, 1, 1, 1), (6, 3, 1, 0, 1, 2), (3, 64, 32, 16, 0, 1)],
)
def test_output_size_matches_torch_layer(n: int, k: int, s: int, p: int, op: int, d: int) -> None:
    layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)
    try:
        expected = layer(torch.zeros(1, 1, n, n)).shape[-1]
    except RuntimeError:  # torch refuses an empty output; so must we
        with pytest.raises(ValueError, match="padding"):
            conv_transpose_output_size(n, k, s, p, op, d)
        return
    assert conv_transpose_output_size(n, k, s, p, op, d) == expected


def test_output_size_inverts_convolution_size() -> None:
    # tconv(conv(X)).shape == X.shape whenever the convolution's size map is exact
    for n, k, s, p in [(8, 4, 2, 1), (32, 3, 1, 1), (224, 64, 32, 16)]:
        conv_out = (n + 2 * p - k) // s + 1
        assert conv_transpose_output_size(conv_out, k, s, p) == n


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8, 16, 32])
def test_bilinear_upsample_equals_interpolate_in_the_interior(factor: int) -> None:
    x = torch.rand(2, 3, 9, 11)
    got = BilinearUpsample(3, factor)(x)
    expected = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert got.shape == expected.shape == (2, 3, 9 * factor, 11 * factor)
    m = factor  # the transposed convolution sees zeros past the border
    torch.testing.assert_close(got[..., m:-m or None, m:-m or None],
                               expected[..., m:-m or None, m:-m or None], atol=1e-5, rtol=1e-5)


def test_bilinear_kernel_formula_and_layout() -> None:
    # The paper's upsample_filt for k = 4: factor 2, centre 1.5, tent (1/4, 3/4, 3/4, 1/4)
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    w = bilinear_kernel(3, 2, 4)
    assert w.shape == (3, 2, 4, 4) and w.dtype == torch.float32
    torch.testing.assert_close(w[0, 0], torch.outer(tent, tent))
    torch.testing.assert_close(w[1, 1], torch.outer(tent, tent))
    assert w[2].abs().sum() == 0 and w[0, 1].abs().sum() == 0 and w[1, 0].abs().sum() == 0
    # odd k = 3: factor 2, centre 1, tent (1/2, 1, 1/2)
    torch.testing.assert_close(bilinear_kernel(1, 1, 3)[0, 0],
                               torch.outer(*(torch.tensor([0.5, 1.0, 0.5]),) * 2))
    assert bilinear_kernel(1, 1, 1)[0, 0].item() == 1.0


@pytest.mark.parametrize("factor", [2, 3, 4, 8, 32])
def test_bilinear_kernel_preserves_a_constant_image(factor: int) -> None:
    # each output pixel in the interior receives weights summing to one
    k = bilinear_kernel_size(factor)
    w = bilinear_kernel(1, 1, k)
    y = F.conv_transpose2d(torch.ones(1, 1, 6, 6), w, stride=factor)
    interior = y[..., k:-k, k:-k]
    torch.testing.assert_close(interior, torch.ones_like(interior))


def test_init_bilinear_and_learnable_flag() -> None:
    layer = init_bilinear_(nn.ConvTranspose2d(2, 2, 4, stride=2, bias=True))
    torch.testing.assert_close(layer.weight.data, bilinear_kernel(2, 2, 4))
    assert layer.bias.abs().sum() == 0
    assert not BilinearUpsample(2, 2).up.weight.requires_grad
    assert BilinearUpsample(2, 2, learnable=True).up.weight.requires_grad


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: bilinear_kernel(0, 1, 4), ValueError, "in_channels.*positive int, got 0"),
        (lambda: bilinear_kernel(1, 1, 2.5), TypeError, "kernel_size.*an int"),
        (lambda: bilinear_kernel(1, 1, True), TypeError, "kernel_size"),
        (lambda: conv_transpose_output_size(4, 3, stride=0), ValueError, "stride"),
        (lambda: conv_transpose_output_size(4, 3, 2, 0, output_padding=2), ValueError,
         "output_padding.*smaller than max"),
        (lambda: conv_transpose_output_size(1, 1, 1, padding=1), ValueError, "padding.*empty"),
        (lambda: conv_transpose2d(torch.rand(3, 4, 4), torch.rand(3, 1, 2, 2)), ValueError,
         "'x' expected a 4-d tensor.*unsqueeze"),
        (lambda: conv_transpose2d(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 2, 2)), ValueError,
         "weight.*C_in.*transpose"),
        (lambda: conv_transpose2d(torch.rand(1, 2, 4, 4), torch.rand(2, 3, 2, 2),
                                  torch.rand(2)), ValueError, "bias.*3 values"),
        (lambda: conv_transpose2d([[1.0]], torch.rand(1, 1, 2, 2)), TypeError, "torch.Tensor"),
        (lambda: BilinearUpsample(3, 2)(torch.rand(1, 4, 5, 5)), ValueError, "3 channels"),
        (lambda: init_bilinear_(nn.Conv2d(1, 1, 3)), TypeError, "ConvTranspose2d"),
    ],
)
def test_bad_input_is_named(call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
