"""The checkers of exercise 08 (chapter "What came after FCN") have teeth: right answers pass,
typical wrong ones are named, and blocks with other names or shapes fail clearly.

Every answer below is written here, independently of the checker's own list of mistakes:
the decoder blocks with their own double convolution and ``F.pad`` (negative amounts crop),
the dense kernels with loops or as a transposed convolution of the weight with a single 1.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_course.checks import CheckFailure, check_dilate_kernel, check_unet_decoder_block
from fcn_course.models import UNetDecoderBlock, dilate_kernel

# ---- task 1: decoder blocks a student might write


class TwoConvs(nn.Sequential):
    """Two padded 3x3 convolutions with batch norm and ReLU, written out."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            bn1=nn.BatchNorm2d(out_channels),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            bn2=nn.BatchNorm2d(out_channels),
            relu2=nn.ReLU(),
        ))


class BlockRight(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = TwoConvs(in_channels // 2 + skip_channels, out_channels)

    def fit(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        dh, dw = skip.shape[2] - up.shape[2], skip.shape[3] - up.shape[3]
        return F.pad(up, (0, dw, 0, dh))  # bottom/right: a negative amount crops

    def join(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([up, skip], dim=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self.join(self.fit(self.up(x), skip), skip))


class BlockSkipFirst(BlockRight):
    def join(self, up, skip):
        return torch.cat([skip, up], dim=1)


class BlockAdds(BlockRight):
    def join(self, up, skip):
        return up + skip


class BlockAddsWithNarrowConv(BlockAdds):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__(in_channels, skip_channels, out_channels)
        self.conv = TwoConvs(in_channels // 2, out_channels)


class BlockCatsBatch(BlockRight):
    def join(self, up, skip):
        return torch.cat([up, skip], dim=0)


class BlockTopLeft(BlockRight):
    def fit(self, up, skip):
        dh, dw = skip.shape[2] - up.shape[2], skip.shape[3] - up.shape[3]
        return F.pad(up, (dw, 0, dh, 0))


class BlockFloorSplit(BlockRight):
    """The centring of a popular U-Net implementation, with the right concatenation order."""

    def fit(self, up, skip):
        dh, dw = skip.shape[2] - up.shape[2], skip.shape[3] - up.shape[3]
        return F.pad(up, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


class BlockNoSizeMatch(BlockRight):
    def fit(self, up, skip):
        return up


class BlockCropOnly(BlockRight):
    def fit(self, up, skip):
        return up[:, :, : skip.shape[2], : skip.shape[3]]


class BlockResized(BlockRight):
    def fit(self, up, skip):
        return F.interpolate(up, size=skip.shape[2:])


class BlockResizedBilinear(BlockRight):
    def fit(self, up, skip):
        return F.interpolate(up, size=skip.shape[2:], mode="bilinear", align_corners=False)


class BlockUpsampleModule(BlockRight):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__(in_channels, skip_channels, out_channels)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.conv = TwoConvs(in_channels + skip_channels, out_channels)


class BlockInterpolatesX(BlockRight):
    def forward(self, x, skip):
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(self.join(self.fit(up, skip), skip))


class BlockKeepsChannels(BlockRight):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__(in_channels, skip_channels, out_channels)
        self.up = nn.ConvTranspose2d(in_channels, in_channels, kernel_size=2, stride=2)
        self.conv = TwoConvs(in_channels + skip_channels, out_channels)


class BlockKernel3(BlockRight):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__(in_channels, skip_channels, out_channels)
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=3, stride=2,
                                     padding=1, output_padding=1)


class BlockOtherNames(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.upconv = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.double_conv = TwoConvs(in_channels // 2 + skip_channels, out_channels)

    def forward(self, x, skip):
        up = self.upconv(x)
        up = F.pad(up, (0, skip.shape[3] - up.shape[3], 0, skip.shape[2] - up.shape[2]))
        return self.double_conv(torch.cat([up, skip], dim=1))


class BlockNoConv(BlockRight):
    def forward(self, x, skip):
        return self.join(self.fit(self.up(x), skip), skip)


class BlockStub(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        raise NotImplementedError("a transposed convolution and a DoubleConv")


class BlockForwardStub(BlockRight):
    def forward(self, x, skip):
        raise NotImplementedError("upsample, match the size, concatenate, convolve")


class NotAModule:
    def __init__(self, in_channels, skip_channels, out_channels):
        self.in_channels = in_channels


# ---- task 1: the tests


def test_reference_and_an_independent_block_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check_unet_decoder_block(UNetDecoderBlock)
    check_unet_decoder_block(BlockRight)
    line = "PASS UNetDecoderBlock: all 6 cases agree with fcn_course.models.UNetDecoderBlock"
    assert capsys.readouterr().out.splitlines() == [line, line]


def test_block_check_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    check_unet_decoder_block(BlockRight)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        # sizes already agree in case 1, so only the order is wrong there
        (BlockSkipFirst, r"case 1 of 6(?s:.*)diagnosis: .*order \[skip, up\] instead of"),
        # case 2 pads (where the floor split is right), case 3 crops (where it is not)
        (BlockTopLeft, r"case 2 of 6: .*skip of shape \(2, 4, 11, 13\)(?s:.*)"
                       r"diagnosis: .*at the top/left instead of the bottom/right"),
        (BlockFloorSplit, r"case 3 of 6: .*skip of shape \(2, 5, 9, 11\)(?s:.*)"
                          r"diagnosis: .*centred with F\.pad"),
        (BlockResized, r"case 2 of 6(?s:.*)diagnosis: .*resized .*F\.interpolate \(nearest\)"),
        (BlockResizedBilinear, r"diagnosis: .*resized .*F\.interpolate \(bilinear\)"),
    ],
)
def test_typical_block_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_unet_decoder_block(student)
    assert str(failure.value).count("diagnosis:") == 1


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (BlockAdds, r"raised RuntimeError on case 1 of 6(?s:.*)to have 8 channels, but got 4"
                    r"(?s:.*)diagnosis: .*skip was added"),
        (BlockCatsBatch, r"raised RuntimeError on case 1 of 6(?s:.*)diagnosis: .*along dim 0"),
        (BlockNoSizeMatch, r"raised RuntimeError on case 2 of 6(?s:.*)Sizes of tensors must "
                           r"match(?s:.*)diagnosis: .*without matching their sizes"),
        # a crop alone is right for smaller skips only; case 2's skip is larger
        (BlockCropOnly, r"raised RuntimeError on case 2 of 6(?s:.*)diagnosis: .*zero-pad"),
        (BlockInterpolatesX, r"raised RuntimeError on case 1 of 6(?s:.*)to have 8 channels, but "
                             r"got 12(?s:.*)diagnosis: .*upsampled by interpolation, not by "
                             r"self\.up"),
    ],
)
def test_block_mistakes_that_cannot_run_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_unet_decoder_block(student)
    assert str(failure.value).count("diagnosis:") == 1


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (BlockAddsWithNarrowConv, r"wrong shape: conv\.conv1\.weight: expected \(4, 8, 3, 3\), "
                                  r"got \(4, 4, 3, 3\)(?s:.*)diagnosis: .*skip is added, not "
                                  r"concatenated"),
        (BlockUpsampleModule, r"missing: up\.weight \(8, 4, 2, 2\), up\.bias \(4,\)(?s:.*)"
                              r"conv\.conv1\.weight: expected \(4, 8, 3, 3\), got \(4, 12, 3, 3\)"
                              r"(?s:.*)diagnosis: .*upsampled by interpolation"),
        (BlockKeepsChannels, r"up\.weight: expected \(8, 4, 2, 2\), got \(8, 8, 2, 2\)(?s:.*)"
                             r"diagnosis: .*keeps the channels"),
        (BlockKernel3, r"up\.weight: expected \(8, 4, 2, 2\), got \(8, 4, 3, 3\)(?s:.*)"
                       r"diagnosis: .*kernel is not 2x2"),
    ],
)
def test_blocks_with_misshaped_layers_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=r"^UNetDecoderBlock\(in_channels=8, skip_channels=4, "
                       r"out_channels=4\) does not have the parameters of the reference") as fail:
        check_unet_decoder_block(student)
    assert fail.match(match)


def test_block_with_other_attribute_names_fails_naming_them() -> None:
    with pytest.raises(CheckFailure) as failure:
        check_unet_decoder_block(BlockOtherNames)
    message = str(failure.value)
    assert "missing: up.weight (8, 4, 2, 2), up.bias (4,), conv.conv1.weight" in message
    assert "not in the reference: upconv.weight, upconv.bias, double_conv.conv1.weight" in message
    assert "hint: keep the names of the notebook: self.up = nn.ConvTranspose2d(" in message
    assert "diagnosis:" not in message


@pytest.mark.parametrize(
    ("student", "error", "match"),
    [
        (BlockStub, CheckFailure, r"not implemented yet(?s:.*)hint: a transposed convolution"),
        (BlockForwardStub, CheckFailure, r"not implemented yet(?s:.*)hint: upsample, match"),
        (BlockNoConv, CheckFailure, r"expected shape \(1, 4, 8, 10\), got shape \(1, 8, 8, 10\)"
                                    r"(?s:.*)hint: up = self\.up\(x\)"),
        (NotAModule, CheckFailure, r"returned .*NotAModule.*expected an nn\.Module"),
        (BlockRight(8, 4, 4), TypeError, r"expected your class UNetDecoderBlock, got an "
                                         r"instance of BlockRight; pass the class itself"),
        (None, TypeError, r"expected your function UNetDecoderBlock \(a callable\), got NoneType"),
    ],
)
def test_unfinished_or_wrong_kinds_of_block_fail_clearly(student, error, match: str) -> None:
    with pytest.raises(error, match=match):
        check_unet_decoder_block(student)


# ---- task 2: dense kernels a student might write


def dilate_loops(weight, rate):
    c_out, c_in, kh, kw = weight.shape
    dense = torch.zeros(c_out, c_in, (kh - 1) * rate + 1, (kw - 1) * rate + 1)
    for i in range(kh):
        for j in range(kw):
            dense[:, :, i * rate, j * rate] = weight[:, :, i, j]
    return dense


def dilate_by_transposed_conv(weight, rate):
    """Each tap painted ``rate`` apart: a transposed convolution with a 1x1 kernel of 1."""
    c_out, c_in, kh, kw = weight.shape
    one = torch.ones(1, 1, 1, 1)
    dense = F.conv_transpose2d(weight.reshape(-1, 1, kh, kw), one, stride=rate)
    return dense.reshape(c_out, c_in, *dense.shape[-2:])


def _slice_into(weight, rate, size):
    kh, kw = weight.shape[-2:]
    dense = torch.zeros(*weight.shape[:2], size(kh, rate), size(kw, rate))
    dense[..., ::rate, ::rate] = weight
    return dense


def dilate_rate_zeros(weight, rate):
    c_out, c_in, kh, kw = weight.shape
    dense = torch.zeros(c_out, c_in, kh + (kh - 1) * rate, kw + (kw - 1) * rate)
    dense[..., :: rate + 1, :: rate + 1] = weight
    return dense


def dilate_trailing_zeros(weight, rate):
    return _slice_into(weight, rate, lambda k, r: k * r)


def dilate_size_k_plus_k1_r(weight, rate):
    c_out, c_in, kh, kw = weight.shape
    dense = torch.zeros(c_out, c_in, kh + (kh - 1) * rate, kw + (kw - 1) * rate)
    for i in range(kh):
        for j in range(kw):
            dense[:, :, i * rate, j * rate] = weight[:, :, i, j]
    return dense


def dilate_size_rk_minus_1(weight, rate):
    return _slice_into(weight, rate, lambda k, r: r * k - 1)


def dilate_size_k1_r(weight, rate):
    return _slice_into(weight, rate, lambda k, r: (k - 1) * r)


def dilate_sliced_into_k_plus_k1_r(weight, rate):
    return _slice_into(weight, rate, lambda k, r: k + (k - 1) * r)  # 4 slots for 3 taps


def dilate_zero_padded(weight, rate):
    k = weight.shape[-1]
    pad = (rate * (k - 1) + 1 - k) // 2
    return F.pad(weight, (pad, pad, pad, pad))


def dilate_numpy(weight, rate):
    return dilate_loops(weight, rate).numpy()


def dilate_stub(weight, rate):
    raise NotImplementedError("a zero kernel rate * (k - 1) + 1 wide, taps rate apart")


# ---- task 2: the tests


def test_reference_and_independent_kernels_pass(capsys: pytest.CaptureFixture[str]) -> None:
    # the reference passes the convolution cases too: it agrees with the oracle F.conv2d
    for student in (dilate_kernel, dilate_loops, dilate_by_transposed_conv):
        check_dilate_kernel(student)
    line = ("PASS dilate_kernel: all 10 cases agree with fcn_course.models.dilate_kernel and "
            "F.conv2d(x, weight, dilation=rate)")
    assert capsys.readouterr().out.splitlines() == [line] * 3


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (dilate_rate_zeros, r"case 1 of 10: dilate_kernel\(weight of shape \(1, 1, 3, 3\), "
                            r"rate=2\)(?s:.*)got shape \(1, 1, 7, 7\)(?s:.*)diagnosis: .*rate "
                            r"zeros are inserted"),
        (dilate_trailing_zeros, r"case 1 of 10(?s:.*)got shape \(1, 1, 6, 6\)(?s:.*)"
                                r"diagnosis: .*appended after the last tap"),
        (dilate_size_k_plus_k1_r, r"case 1 of 10(?s:.*)diagnosis: .*k \+ \(k - 1\) \* rate"),
        # rate * k - 1 is right at rate 2 (case 1) and wrong at rate 3 (case 2)
        (dilate_size_rk_minus_1, r"case 2 of 10(?s:.*)got shape \(2, 3, 8, 8\)(?s:.*)"
                                 r"diagnosis: .*rate \* k - 1, right only at rate 2"),
        (dilate_zero_padded, r"case 1 of 10(?s:.*)diagnosis: .*zero-padded to the effective "
                             r"size instead of dilated"),
    ],
)
def test_typical_kernel_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_dilate_kernel(student)
    assert str(failure.value).count("diagnosis:") == 1


@pytest.mark.parametrize(
    ("student", "error", "match"),
    [
        (dilate_size_k1_r, CheckFailure, r"raised RuntimeError on case 1 of 10(?s:.*)diagnosis: "
                                         r".*wrong effective size"),
        (dilate_sliced_into_k_plus_k1_r, CheckFailure, r"raised RuntimeError on case 1 of 10"
                                                       r"(?s:.*)diagnosis: .*wrong effective size"),
        (dilate_numpy, CheckFailure, r"expected a torch.Tensor, got ndarray"),
        (dilate_stub, CheckFailure, r"not implemented yet(?s:.*)hint: a zero kernel"),
        (dilate_kernel(torch.ones(1, 1, 3, 3), 2), TypeError,
         r"expected your function dilate_kernel \(a callable\), got Tensor"),
    ],
)
def test_unfinished_or_broken_kernels_fail_clearly(student, error, match: str) -> None:
    with pytest.raises(error, match=match):
        check_dilate_kernel(student)


def test_kernel_check_leaves_weights_and_random_state_alone() -> None:
    def dilate_in_place(weight, rate):
        dense = dilate_loops(weight, rate)
        weight.zero_()  # a careless answer must not spoil the next case or the next check
        return dense

    torch.manual_seed(5)
    state = torch.get_rng_state()
    check_dilate_kernel(dilate_in_place)
    check_dilate_kernel(dilate_loops)
    assert torch.equal(torch.get_rng_state(), state)
