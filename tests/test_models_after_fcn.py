"""Tests of the models that came after FCN: U-Net, SegNet and DeepLab (chapter 8).

Oracles: ``torch.nn.functional`` compositions written out by hand (decoder block, image
pooling, unpooling), kernels dilated by hand loops, hand-computed unpooling results,
closed-form parameter counts, the coordinate-map formula ``OS * i + (OS - 1) / 2`` and
affine ramps (DeepLab's upsampling), and the models' own weights reloaded through specs.
"""

from __future__ import annotations

import json
from fractions import Fraction
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg11

from fcn_course.models import (
    ASPP,
    MODEL_BUILDERS,
    AxisMap,
    CoordMap,
    DeepLab,
    DoubleConv,
    ImagePooling,
    SegNet,
    UNet,
    UNetDecoderBlock,
    atrous_backbone,
    atrous_conv,
    build_model,
    classifier_features,
    count_parameters,
    course_vgg,
    deeplab,
    dilate_kernel,
    effective_kernel_size,
    layer_map,
    match_size,
    model_from_spec,
    model_spec,
    segnet,
    unet,
)

BUILDERS = {
    "unet": unet,
    "unet_bilinear": lambda **kw: unet(upsampling="bilinear", **kw),
    "segnet": segnet,
    "deeplab": deeplab,
    "deeplab_os16": lambda **kw: deeplab(output_stride=16, **kw),
}

#: Smallest input each model accepts (eval mode): pools that round up keep one pixel.
MINIMUM_SIZE = (1, 1)


def _randomize_batch_norm(model: nn.Module, seed: int) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode batch norm written out: ``(x - mean) / sqrt(var + eps) * gamma + beta``."""
    shape = (1, -1, 1, 1)
    scale = (bn.running_var + bn.eps).rsqrt() * bn.weight
    return (x - bn.running_mean.view(shape)) * scale.view(shape) + bn.bias.view(shape)


def _double_conv_by_hand(x: torch.Tensor, block: DoubleConv) -> torch.Tensor:
    h = F.relu(_bn(F.conv2d(x, block.conv1.weight, padding=1), block.bn1))
    return F.relu(_bn(F.conv2d(h, block.conv2.weight, padding=1), block.bn2))


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {name: build(num_classes=5).eval() for name, build in BUILDERS.items()}


# ------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("size", [MINIMUM_SIZE, (2, 3), (33, 47), (97, 131)])
def test_output_matches_input_size(
    models: dict[str, nn.Module], name: str, size: tuple[int, int]
) -> None:
    with torch.no_grad():
        assert models[name](torch.randn(2, 3, *size)).shape == (2, 5, *size)


@pytest.mark.parametrize("name", ["unet", "segnet", "deeplab"])
def test_large_odd_input(models: dict[str, nn.Module], name: str) -> None:
    with torch.no_grad():
        assert models[name](torch.randn(1, 3, 500, 375)).shape == (1, 5, 500, 375)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_trainable_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(1)
    model = BUILDERS[name](num_classes=4).train()
    x = torch.randn(2, 3, 37, 45)
    target = torch.randint(0, 4, (2, 37, 45))
    F.cross_entropy(model(x), target).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


# ------------------------------------------------------------------------------- U-Net


def test_match_size_crops_or_pads_at_the_bottom_right() -> None:
    x = torch.arange(12.0).view(1, 1, 3, 4)
    torch.testing.assert_close(match_size(x, (2, 3)), x[..., :2, :3])
    padded = match_size(x, (4, 5))
    assert padded.shape == (1, 1, 4, 5)
    torch.testing.assert_close(padded[..., :3, :4], x)
    assert padded[..., 3, :].abs().sum() == 0 and padded[..., :, 4].abs().sum() == 0


@pytest.mark.parametrize("skip_size", [(9, 12), (10, 11), (11, 13)])
def test_unet_decoder_block_transposed_equals_functional_composition(
    skip_size: tuple[int, int],
) -> None:
    # x is 5x6: the up-convolution gives 10x12, cropped (9, 11) or zero-padded (11, 13).
    torch.manual_seed(2)
    block = _randomize_batch_norm(UNetDecoderBlock(8, 6, 5), seed=3).eval()
    x = torch.randn(2, 8, 5, 6)
    skip = torch.randn(2, 6, *skip_size)
    up = F.conv_transpose2d(x, block.up.weight, block.up.bias, stride=2)  # (2, 4, 10, 12)
    rows, cols = skip_size
    up = F.pad(up, (0, max(cols - 12, 0), 0, max(rows - 10, 0)))[..., :rows, :cols]
    expected = _double_conv_by_hand(torch.cat([up, skip], dim=1), block.conv)
    with torch.no_grad():
        out = block(x, skip)
    assert out.shape == (2, 5, *skip_size)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_unet_decoder_block_bilinear_equals_functional_composition() -> None:
    torch.manual_seed(4)
    block = _randomize_batch_norm(
        UNetDecoderBlock(8, 6, 5, upsampling="bilinear"), seed=5
    ).eval()
    x = torch.randn(1, 8, 5, 6)
    skip = torch.randn(1, 6, 9, 11)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)[..., :9, :11]
    expected = _double_conv_by_hand(torch.cat([up, skip], dim=1), block.conv)
    with torch.no_grad():
        torch.testing.assert_close(block(x, skip), expected, rtol=1e-5, atol=1e-5)
    assert count_parameters(block.up) == 0


def test_unet_wiring_joins_each_skip_at_its_resolution() -> None:
    model = unet(num_classes=3, widths=(4, 8, 16)).eval()
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for block in model.decoder:
        block.register_forward_hook(
            lambda _m, inp, _out: seen.append((tuple(inp[0].shape), tuple(inp[1].shape)))
        )
    with torch.no_grad():
        model(torch.randn(1, 3, 21, 10))
    # encoder: 21x10 -> 11x5 -> 6x3; decoder joins 6x3 with 11x5, then 11x5 with 21x10.
    assert seen == [((1, 16, 6, 3), (1, 8, 11, 5)), ((1, 8, 11, 5), (1, 4, 21, 10))]


def test_parameter_counts_follow_the_formulas() -> None:
    def double_conv(c_in: int, c_out: int, bn: bool = True) -> int:
        per_layer = 2 * c_out if bn else c_out  # BN scale and shift, or the bias
        return 9 * c_in * c_out + 9 * c_out * c_out + 2 * per_layer

    assert count_parameters(DoubleConv(5, 7)) == double_conv(5, 7)
    assert count_parameters(DoubleConv(5, 7, batch_norm=False)) == double_conv(5, 7, bn=False)
    # Up-convolution: 2x2 kernel from in to in // 2 channels, with bias.
    block = UNetDecoderBlock(16, 8, 8)
    assert count_parameters(block) == 4 * 16 * 8 + 8 + double_conv(8 + 8, 8)
    assert count_parameters(UNetDecoderBlock(16, 8, 8, upsampling="bilinear")) == double_conv(
        16 + 8, 8
    )
    widths, k = (8, 16, 32, 64, 128), 7
    encoder = double_conv(3, widths[0]) + sum(
        double_conv(a, b) for a, b in pairwise(widths)
    )
    decoder = 0
    channels = widths[-1]
    for skip in reversed(widths[:-1]):
        decoder += 4 * channels * (channels // 2) + channels // 2
        decoder += double_conv(channels // 2 + skip, skip)
        channels = skip
    model = unet(num_classes=k, widths=widths)
    assert count_parameters(model) == encoder + decoder + widths[0] * k + k

    # ASPP with R rates: 1x1 branch, R 3x3 branches, image pooling (1x1), 1x1 projection;
    # every convolution bias-free and followed by a batch norm (2 * A parameters).
    c, a, r = 12, 10, 3
    aspp = ASPP(c, a, (1, 2, 3))
    assert count_parameters(aspp) == (
        (c * a + 2 * a) + r * (9 * c * a + 2 * a) + (c * a + 2 * a) + ((2 + r) * a * a + 2 * a)
    )

    # SegNet: the encoder's 3x3 convolutions (bias + BN), each mirrored in the decoder
    # (b -> a channels, bias + BN), except conv1_1_D: 16 -> K, bias, no BN.
    pairs = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128),
             (128, 128), (128, 128), (128, 128)]
    enc = sum(9 * i * o + o + 2 * o for i, o in pairs)
    dec = sum(9 * o * i + i + 2 * i for i, o in pairs[1:]) + 9 * 16 * k + k
    assert count_parameters(segnet(num_classes=k)) == enc + dec


# ------------------------------------------------------------------------------ SegNet


def test_segnet_unpooling_puts_values_back_at_the_argmax() -> None:
    model = segnet()
    x = torch.tensor([[1.0, 5, 2, 0, 3], [4, 2, 7, 1, 9], [0, 8, 3, 6, 2]]).view(1, 1, 3, 5)
    pooled, indices = model.pool(x)
    # 2x2 windows, rounding up: the last row and column form windows of their own.
    assert pooled.tolist() == [[[[5.0, 7, 9], [8, 6, 2]]]]
    values = torch.tensor([[10.0, 20, 30], [40, 50, 60]]).view(1, 1, 2, 3)
    out = model.unpool(values, indices, output_size=x.shape[-2:])
    expected = torch.tensor([[0.0, 10, 0, 0, 0], [0, 0, 20, 0, 30], [0, 40, 0, 50, 60]])
    assert out.shape == (1, 1, 3, 5)
    torch.testing.assert_close(out[0, 0], expected)
    # The same through torch.nn.functional:
    ref_pooled, ref_indices = F.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
    torch.testing.assert_close(pooled, ref_pooled)
    torch.testing.assert_close(
        out, F.max_unpool2d(values, ref_indices, 2, 2, output_size=x.shape[-2:])
    )


def test_segnet_decoder_unpools_with_the_matching_encoder_indices() -> None:
    torch.manual_seed(6)
    model = segnet(num_classes=3).eval()
    encoder_out: list[torch.Tensor] = []
    unpool_io: list[tuple[torch.Tensor, torch.Tensor]] = []
    for stage in model.backbone:
        stage.register_forward_hook(lambda _m, _i, out: encoder_out.append(out.detach()))
    model.unpool.register_forward_hook(
        lambda _m, inp, out: unpool_io.append((inp[0].detach(), out.detach()))
    )
    with torch.no_grad():
        model(torch.randn(1, 3, 45, 37))
    assert len(encoder_out) == len(unpool_io) == 5
    for features, (sparse_in, sparse_out) in zip(reversed(encoder_out), unpool_io, strict=True):
        _, argmax = F.max_pool2d(features, 2, 2, ceil_mode=True, return_indices=True)
        expected = F.max_unpool2d(sparse_in, argmax, 2, 2, output_size=features.shape[-2:])
        assert sparse_out.shape == features.shape
        torch.testing.assert_close(sparse_out, expected)


def test_segnet_copies_a_trained_classifier() -> None:
    torch.manual_seed(7)
    classifier = course_vgg(widths=(8, 8, 16, 16, 16))
    model = segnet(num_classes=3, backbone=classifier)
    assert torch.equal(model.backbone[0].conv1_1.weight, classifier.features.conv1_1.weight)
    assert model.backbone[0].conv1_1.weight is not classifier.features.conv1_1.weight
    assert model.decoder[-1].conv1_1_D.out_channels == 3
    assert model.decoder[0].conv5_1_D.out_channels == 16  # mirror of conv5_1: 16 -> 16
    assert model.decoder[1].conv4_1_D.out_channels == 16  # mirror of conv4_1: 16 -> 16
    assert model.decoder[2].conv3_1_D.out_channels == 8  # mirror of conv3_1: 8 -> 16


def test_models_from_a_torchvision_vgg() -> None:
    torch.manual_seed(8)
    tv = vgg11(weights=None)
    seg = segnet(num_classes=2, backbone=tv)
    assert torch.equal(seg.backbone[4].conv5_2.weight, tv.features[18].weight)
    lab = deeplab(num_classes=2, backbone=tv)
    assert torch.equal(lab.backbone.conv5_2.weight, tv.features[18].weight)
    assert lab.backbone.conv5_2.dilation == (2, 2)
    with torch.no_grad():
        assert seg.eval()(torch.randn(1, 3, 19, 23)).shape == (1, 2, 19, 23)
        assert lab.eval()(torch.randn(1, 3, 19, 23)).shape == (1, 2, 19, 23)


# ----------------------------------------------------------------------------- DeepLab


def test_effective_kernel_size() -> None:
    assert [effective_kernel_size(3, r) for r in (1, 2, 4, 6)] == [3, 5, 9, 13]
    assert effective_kernel_size(1, 5) == 1


def _dilate_by_hand(weight: torch.Tensor, rate: int) -> torch.Tensor:
    k = weight.shape[-1]
    size = rate * (k - 1) + 1
    dense = torch.zeros(*weight.shape[:2], size, size)
    for i in range(k):
        for j in range(k):
            dense[..., rate * i, rate * j] = weight[..., i, j]
    return dense


@pytest.mark.parametrize("rate", [1, 2, 3])
def test_atrous_conv_equals_dense_conv_with_zero_dilated_kernel(rate: int) -> None:
    torch.manual_seed(9)
    conv = atrous_conv(4, 6, rate=rate)
    assert conv.dilation == (rate, rate) and conv.padding == (rate, rate)
    x = torch.randn(2, 4, 13, 10)
    dense = _dilate_by_hand(conv.weight.detach(), rate)  # (6, 4, 2r + 1, 2r + 1)
    expected = F.conv2d(x, dense, conv.bias, padding=rate)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dilate_kernel(conv.weight.detach(), rate), dense)


def test_dilate_kernel_places_taps_rate_apart() -> None:
    w = torch.tensor([[1.0, 2], [3, 4]]).view(1, 1, 2, 2)
    assert dilate_kernel(w, 3)[0, 0].tolist() == [
        [1, 0, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4],
    ]


def test_atrous_conv_with_rate_beyond_the_map_is_its_centre_tap() -> None:
    # DeepLabv3's observation: when the rate reaches the map size, all taps but the centre
    # read padding, and the 3x3 filter degenerates to a 1x1 one.
    torch.manual_seed(10)
    conv = atrous_conv(3, 4, rate=8)
    x = torch.randn(1, 3, 8, 8)
    expected = F.conv2d(x, conv.weight[..., 1:2, 1:2], conv.bias)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_image_pooling_is_constant_over_space_and_matches_functional() -> None:
    torch.manual_seed(11)
    branch = _randomize_batch_norm(ImagePooling(6, 4), seed=12).eval()
    x = torch.randn(3, 6, 7, 9)
    with torch.no_grad():
        out = branch(x)
    mean = x.mean(dim=(2, 3), keepdim=True)  # (3, 6, 1, 1)
    expected = F.relu(_bn(F.conv2d(mean, branch.conv.weight), branch.bn)).expand(-1, -1, 7, 9)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_image_pooling_trains_on_a_single_image_with_running_statistics() -> None:
    torch.manual_seed(14)
    branch = _randomize_batch_norm(ImagePooling(6, 4), seed=15).train()
    before = branch.bn.running_mean.clone()
    x = torch.randn(1, 6, 5, 7)
    out = branch(x)  # the short last batch of an epoch: one image
    mean = x.mean(dim=(2, 3), keepdim=True)
    expected = F.relu(_bn(F.conv2d(mean, branch.conv.weight), branch.bn)).expand(-1, -1, 5, 7)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(branch.bn.running_mean, before)
    out.sum().backward()
    assert branch.conv.weight.grad is not None and branch.bn.weight.grad is not None
    model = deeplab().train()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7, 32, 32)


def test_aspp_output_shape_and_constant_pooling_branch() -> None:
    torch.manual_seed(13)
    aspp = ASPP(16, 8, (2, 4, 6)).eval()
    assert [b.conv.dilation for b in aspp.atrous] == [(2, 2), (4, 4), (6, 6)]
    store: dict[str, torch.Tensor] = {}
    aspp.image_pool.register_forward_hook(lambda _m, _i, out: store.__setitem__("pool", out))
    aspp.project.register_forward_pre_hook(lambda _m, inp: store.__setitem__("cat", inp[0]))
    x = torch.randn(2, 16, 11, 13)
    with torch.no_grad():
        out = aspp(x)
    assert out.shape == (2, 8, 11, 13)
    assert store["cat"].shape == (2, (2 + 3) * 8, 11, 13)
    pool = store["pool"]
    torch.testing.assert_close(pool, pool[..., :1, :1].expand_as(pool))
    torch.testing.assert_close(store["cat"][:, -8:], pool)  # the last branch concatenated


@pytest.mark.parametrize("output_stride", [8, 16])
def test_atrous_backbone_geometry(output_stride: int) -> None:
    torch.manual_seed(14)
    classifier = course_vgg()
    backbone = atrous_backbone(classifier.features, output_stride)
    # Feature pixel i sits at input pixel OS * i + (OS - 1) / 2.
    expected = AxisMap(output_stride, Fraction(output_stride - 1, 2))
    assert layer_map(backbone) == CoordMap.square(expected)
    strides = [m.stride for m in backbone if isinstance(m, nn.MaxPool2d)]
    kept = output_stride.bit_length() - 1
    assert strides == [2] * kept + [1] * (5 - kept)
    rate = 2 if output_stride == 8 else 1
    assert backbone.conv5_1.dilation == (rate, rate) and backbone.conv5_1.padding == (rate, rate)
    assert backbone.conv4_2.dilation == (1, 1)
    assert torch.equal(backbone.conv5_1.weight, classifier.features.conv5_1.weight)
    assert classifier.features.conv5_1.dilation == (1, 1)  # the classifier is untouched
    with torch.no_grad():
        out = backbone.eval()(torch.randn(1, 3, 100, 75))
    assert out.shape[-2:] == (-(-100 // output_stride), -(-75 // output_stride))


def test_deeplab_upsampling_puts_each_score_at_its_input_pixel() -> None:
    # If the coarse scores are a plane a*i + b*j + c, bilinear upsampling keeps the plane,
    # so the output at input pixel y must be the plane at (y - 3.5) / 8 (output stride 8),
    # for an input whose sides are not multiples of 8.
    model = deeplab(num_classes=2).eval()
    h, w = 100, 75
    i = torch.arange(-(-h // 8), dtype=torch.float32).view(-1, 1)
    j = torch.arange(-(-w // 8), dtype=torch.float32).view(1, -1)
    plane = torch.stack([0.7 * i - 0.3 * j + 1.0, -0.2 * i + 0.5 * j])[None]  # (1, 2, 13, 10)
    model.score.register_forward_hook(lambda *_: plane)
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w))
    y = (torch.arange(h, dtype=torch.float32).view(-1, 1) - 3.5) / 8
    x = (torch.arange(w, dtype=torch.float32).view(1, -1) - 3.5) / 8
    expected = torch.stack([0.7 * y - 0.3 * x + 1.0, -0.2 * y + 0.5 * x])[None]
    inner = (..., slice(8, -8), slice(8, -8))  # bilinear clamps at the border
    torch.testing.assert_close(out[inner], expected[inner], rtol=1e-5, atol=1e-5)


def test_deeplab_default_rates_follow_the_output_stride() -> None:
    assert deeplab().aspp.rates == (4, 8, 12)
    assert deeplab(output_stride=16).aspp.rates == (2, 4, 6)
    assert deeplab(rates=[1, 3]).aspp.rates == (1, 3)


# -------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("name", ["unet", "segnet", "deeplab"])
def test_bad_images_raise_clear_errors(models: dict[str, nn.Module], name: str) -> None:
    model = models[name]
    with pytest.raises(ValueError, match=r"argument 'x' expected a 4-d tensor.*unsqueeze"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"expected 3 channels in dim -3"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"argument 'x' expected a torch.Tensor"):
        model([[0.0]])


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="argument 'widths' expected at least two channel"):
        unet(widths=(16,))
    with pytest.raises(ValueError, match="argument 'widths' expected a positive int"):
        unet(widths=(16, 0))
    with pytest.raises(ValueError, match=r"argument 'upsampling' expected one of 'transposed'"):
        unet(upsampling="nearest")
    with pytest.raises(TypeError, match="argument 'batch_norm' expected True or False"):
        unet(batch_norm=1)
    with pytest.raises(ValueError, match="argument 'num_classes' expected a positive int"):
        segnet(num_classes=0)
    with pytest.raises(TypeError, match="argument 'num_classes' expected an int"):
        deeplab(num_classes=7.0)
    with pytest.raises(ValueError, match=r"argument 'backbone' expected one of 'course', 'vgg16'"):
        segnet(backbone="resnet50")
    with pytest.raises(TypeError, match="argument 'backbone' expected None"):
        deeplab(backbone=nn.Conv2d(3, 3, 3))
    with pytest.raises(ValueError, match="argument 'weights_backbone' expected None unless"):
        deeplab(weights_backbone="DEFAULT")
    with pytest.raises(ValueError, match=r"argument 'output_stride' expected one of 8, 16"):
        deeplab(output_stride=32)
    with pytest.raises(TypeError, match="argument 'rates' expected a non-empty list"):
        deeplab(rates=())
    with pytest.raises(ValueError, match="argument 'rates' expected a positive int"):
        deeplab(rates=(0, 2))
    with pytest.raises(ValueError, match="argument 'kernel_size' expected an odd size"):
        atrous_conv(3, 3, rate=2, kernel_size=4)
    with pytest.raises(ValueError, match="argument 'rate' expected a positive int"):
        dilate_kernel(torch.ones(1, 1, 3, 3), 0)
    with pytest.raises(ValueError, match="argument 'in_channels' expected at least 2"):
        UNetDecoderBlock(1, 4, 4)
    with pytest.raises(TypeError, match=r"argument 'features' expected an nn\.Sequential"):
        SegNet(course_vgg(), num_classes=3)
    with pytest.raises(ValueError, match="argument 'features' expected 2x2 max pools"):
        DeepLab(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(3, 3)), num_classes=2)
    with pytest.raises(ValueError, match="argument 'features' expected 'same' convolutions"):
        atrous_backbone(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, 2)), 8)
    with pytest.raises(ValueError, match="argument 'features' expected at least 3 pools"):
        atrous_backbone(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2, 2)), 8)


def test_bad_calls_at_run_time_raise_clear_errors() -> None:
    block = UNetDecoderBlock(8, 4, 4).eval()
    with pytest.raises(ValueError, match="argument 'skip' expected a batch of 1 maps of about "
                       r"twice the size of x \(10x12"):
        block(torch.randn(1, 8, 5, 6), torch.randn(1, 4, 14, 12))
    with pytest.raises(ValueError, match="argument 'skip' expected 4 channels"):
        block(torch.randn(1, 8, 5, 6), torch.randn(1, 3, 10, 12))
    with pytest.raises(ValueError, match=r"argument 'size' expected a pair \(H, W\)"):
        match_size(torch.randn(1, 1, 4, 4), (4,))


# ---------------------------------------------------------------------------- registry


def _variants() -> list[tuple[str, dict]]:
    return [
        ("unet", {"num_classes": 3, "widths": (8, 16, 32), "upsampling": "bilinear"}),
        ("unet", {"num_classes": 4, "batch_norm": False}),
        ("segnet", {"num_classes": 3, "backbone": course_vgg(widths=(8, 8, 16, 16, 16))}),
        ("deeplab", {"num_classes": 3, "output_stride": 16, "rates": (1, 2, 3),
                     "aspp_channels": 16, "backbone": course_vgg(widths=(8, 8, 16, 16, 16))}),
    ]


@pytest.mark.parametrize(("name", "kwargs"), _variants())
def test_registry_round_trip_rebuilds_the_same_model(name: str, kwargs: dict) -> None:
    assert name in MODEL_BUILDERS
    torch.manual_seed(15)
    model = build_model(name, **kwargs).eval()
    spec = json.loads(json.dumps(model_spec(name, **kwargs)))  # plain data only
    rebuilt = model_from_spec(spec).eval()
    assert type(rebuilt) is type(model)
    rebuilt.load_state_dict(model.state_dict())  # strict: same names and shapes
    x = torch.randn(2, 3, 29, 35)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def test_build_model_returns_the_new_architectures() -> None:
    assert isinstance(build_model("unet", num_classes=3), UNet)
    assert isinstance(build_model("segnet", num_classes=3), SegNet)
    assert isinstance(build_model("deeplab", num_classes=3), DeepLab)
    with pytest.raises(TypeError, match=r"keywords of unet\(\): num_classes, in_channels"):
        build_model("unet", backbone="course")


def test_classifier_features_copies_and_leaves_the_classifier_alone() -> None:
    classifier = course_vgg()
    features = classifier_features(classifier)
    assert features is not classifier.features
    assert torch.equal(features.conv3_1.weight, classifier.features.conv3_1.weight)
    assert features.conv3_1.weight is not classifier.features.conv3_1.weight
