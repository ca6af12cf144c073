"""Tests of fcn_course.models: the classifier, convolutionalize, geometry, FCNs, complexity.

Oracles: the classifiers' own logits (convolutionalize), the FCN paper's published crop
offsets, ``F.interpolate`` and closed-form affine ramps (upsampling and alignment), the
second-difference bound of two-step bilinear interpolation (staged initialisation), and
the convolution FLOP formula.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG16_Weights
from torchvision.models import vgg16 as tv_vgg16
from torchvision.models.vgg import cfgs as tv_cfgs
from torchvision.models.vgg import make_layers as tv_make_layers

from fcn_course.models import (
    AxisMap,
    ConvolutionalizedVGG,
    CoordMap,
    FCN8s,
    FCN16s,
    FCN32s,
    chain,
    conv_map,
    conv_transpose_map,
    convolutionalize,
    count_flops,
    count_parameters,
    course_vgg,
    crop_offset,
    fcn8s,
    fcn8s_from_fcn16s,
    fcn16s,
    fcn16s_from_fcn32s,
    fcn32s,
    layer_map,
    paper_crop_offsets,
    vgg16,
    vgg_from_torchvision,
)

BUILDERS = {"32s": fcn32s, "16s": fcn16s, "8s": fcn8s}


def _default_init(model: nn.Module, seed: int) -> nn.Module:
    """Re-draw every conv/linear layer with PyTorch's default init, so logits are O(1)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.reset_parameters()
    return model


def _hook_output(module: nn.Module, store: dict[str, torch.Tensor], key: str):
    return module.register_forward_hook(lambda _m, _i, out: store.__setitem__(key, out.detach()))


def _hook_input(module: nn.Module, store: dict[str, torch.Tensor], key: str):
    return module.register_forward_pre_hook(lambda _m, inp: store.__setitem__(key, inp[0].detach()))


def _second_difference_bound(s: torch.Tensor) -> float:
    """``(max |d²s/dy²| + max |d²s/dx²|) / 8``: how far 2x-then-more bilinear steps may stray
    from one bilinear step (the chord cuts each kink of the piecewise-linear interpolant)."""
    d2y = s[..., 2:, :] - 2 * s[..., 1:-1, :] + s[..., :-2, :]
    d2x = s[..., :, 2:] - 2 * s[..., :, 1:-1] + s[..., :, :-2]
    return float(d2y.abs().max() + d2x.abs().max()) / 8


def _interior(t: torch.Tensor, margin: int = 32) -> torch.Tensor:
    return t[..., margin:-margin, margin:-margin]


@pytest.fixture(scope="module")
def tv_model() -> nn.Module:
    torch.manual_seed(0)
    return tv_vgg16(weights=None).eval()


# --------------------------------------------------------------------------- classifier


def test_course_vgg_layout_and_feature_info() -> None:
    model = course_vgg()
    assert [f["name"] for f in model.feature_info] == [f"pool{s}" for s in range(1, 6)]
    assert [f["channels"] for f in model.feature_info] == [16, 32, 64, 128, 128]
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert model.pool5_size == 3  # 96 / 32
    assert model.classifier.fc6.in_features == 3 * 3 * 128
    assert model(torch.randn(2, 3, 96, 96)).shape == (2, 6)
    wide = course_vgg(num_classes=4, input_size=160, widths=(8, 8, 16, 16, 32))
    assert wide.classifier.fc6.in_features == 5 * 5 * 32
    assert wide.features.conv3_2.out_channels == 16


def test_vgg_from_torchvision_keeps_weights_and_names(tv_model: nn.Module) -> None:
    model = vgg_from_torchvision(tv_model)
    assert model.input_size == 224 and model.pool5_size == 7
    assert [f["channels"] for f in model.feature_info] == [64, 128, 256, 512, 512]
    assert torch.equal(model.features.conv5_3.weight, tv_model.features[28].weight)
    assert torch.equal(model.classifier.fc7.weight, tv_model.classifier[3].weight)
    assert model.features.conv5_3.weight is not tv_model.features[28].weight  # a copy


def test_vgg16_passes_weights_to_torchvision(
    monkeypatch: pytest.MonkeyPatch, tv_model: nn.Module
) -> None:
    # No download here: stand in for torchvision's builder and check what it is asked for.
    seen = {}

    def fake_vgg16(*, weights, progress):
        seen["weights"] = weights
        return tv_model

    monkeypatch.setattr("torchvision.models.vgg16", fake_vgg16)
    vgg16(weights="IMAGENET1K_V1")
    assert seen["weights"] is VGG16_Weights.IMAGENET1K_V1


# --------------------------------------------------------------------- convolutionalize


def test_convolutionalize_reproduces_course_classifier() -> None:
    classifier = _default_init(course_vgg(), seed=1).eval()
    net = convolutionalize(classifier)
    x = torch.randn(4, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = classifier(x)  # (4, 6)
        out = net(x)  # (4, 6, 1, 1)
        assert out.shape == (4, 6, 1, 1)
        torch.testing.assert_close(out.flatten(1), ref, rtol=1e-4, atol=1e-5)
        # A larger input slides the 96x96 classifier 32 pixels at a time: ceil(H/32) - 3 + 1.
        assert net(torch.randn(1, 3, 200, 161)).shape == (1, 6, 5, 4)
    assert net.fc6.kernel_size == (3, 3) and net.fc6.padding == (0, 0)
    assert classifier.classifier.fc6.weight.shape == (256, 3 * 3 * 128)  # untouched


def test_convolutionalize_reproduces_torchvision_vgg16(tv_model: nn.Module) -> None:
    net = convolutionalize(tv_model)
    assert net.fc6.kernel_size == (7, 7)
    assert net.fc7.kernel_size == (1, 1) and net.fc8.kernel_size == (1, 1)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = tv_model(x)  # (1, 1000), through AdaptiveAvgPool2d((7, 7)), the identity here
        out = net(x)
        assert out.shape == (1, 1000, 1, 1)
        torch.testing.assert_close(out.flatten(1), ref, rtol=1e-4, atol=1e-5)
        assert net(torch.randn(1, 3, 256, 288)).shape == (1, 1000, 2, 3)


def test_convolutionalize_rejects_what_it_cannot_convert() -> None:
    with pytest.raises(TypeError, match="argument 'classifier' expected a VGG-style"):
        convolutionalize(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
    with pytest.raises(TypeError, match="got Conv2d"):
        convolutionalize(nn.Conv2d(3, 8, 3))


def test_convolutionalized_net_rejects_too_small_input() -> None:
    net = convolutionalize(course_vgg())
    with pytest.raises(ValueError, match="pool5 map is at least 3x3"):
        net(torch.randn(1, 3, 40, 40))


# ----------------------------------------------------------------------------- geometry


def test_layer_maps_follow_the_formula() -> None:
    m = conv_map(kernel_size=5, stride=2, padding=1, dilation=3)
    assert (m.scale, m.offset) == (2, Fraction(3 * 4, 2) - 1)
    t = conv_transpose_map(4, 2)
    assert t.compose(conv_map(4, 2)) == AxisMap()  # inverse
    assert (t.scale, t.offset) == (Fraction(1, 2), Fraction(-3, 4))
    pool = layer_map(nn.MaxPool2d(2, 2, ceil_mode=True))
    assert pool == CoordMap.square(AxisMap(2, Fraction(1, 2)))
    seq = layer_map(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)))
    assert seq == chain([conv_map(3, padding=1), conv_map(2, 2)])
    assert seq.y(Fraction(1)) == Fraction(5, 2)


def test_paper_crop_offsets_match_published_numbers() -> None:
    assert paper_crop_offsets() == {
        "fcn32s": {"upscore": 19},
        "fcn16s": {"score_pool4": 5, "upscore16": 27},
        "fcn8s": {"score_pool4": 5, "score_pool3": 9, "upscore8": 31},
    }


def test_paper_crop_from_torchvision_modules() -> None:
    # The same numbers read off real layers: torchvision's VGG16 with conv1_1 padded by 100.
    features = tv_make_layers(tv_cfgs["D"])
    features[0].padding = (100, 100)
    pool4 = layer_map(features[:24])
    pool5 = layer_map(features)
    fc6, one = nn.Conv2d(512, 8, 7), nn.Conv2d(8, 8, 1)
    score_fr = pool5.compose(layer_map(nn.Sequential(fc6, one, one)))
    upscore = score_fr.compose(layer_map(nn.ConvTranspose2d(8, 8, 64, stride=32)))
    upscore2 = score_fr.compose(layer_map(nn.ConvTranspose2d(8, 8, 4, stride=2)))
    assert crop_offset(upscore, CoordMap.identity()) == (19, 19)
    assert crop_offset(pool4.compose(layer_map(one)), upscore2) == (5, 5)


def test_crop_offset_errors() -> None:
    with pytest.raises(ValueError, match="a shift of -1/2 pixels"):
        crop_offset(AxisMap(1, Fraction(1, 2)), AxisMap(1, 0))
    with pytest.raises(ValueError, match="swap the arguments"):
        crop_offset(AxisMap(1, 3), AxisMap(1, 0))
    with pytest.raises(ValueError, match="same stride"):
        crop_offset(AxisMap(2, 0), AxisMap(1, 0))
    with pytest.raises(TypeError, match="AdaptiveAvgPool2d"):
        layer_map(nn.AdaptiveAvgPool2d(7))


# ------------------------------------------------------------------------------- FCNs


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (33, 47), (97, 131)])
def test_fcn_output_matches_input_size(variant: str, size: tuple[int, int]) -> None:
    model = BUILDERS[variant](num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 5, *size)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_large_odd_input(variant: str) -> None:
    model = BUILDERS[variant]().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 500, 375)).shape == (1, 7, 500, 375)


def test_crop_offsets_are_derived_and_stored() -> None:
    # Without pad 100: pool5 maps as x = 32 i + 15.5; see the module docstring of fcn.py.
    assert fcn32s().crop_offsets == {"upscore": (16, 16)}
    assert fcn16s().crop_offsets == {"upscore2": (1, 1), "upscore16": (8, 8)}
    assert fcn8s().crop_offsets == {
        "upscore2": (1, 1), "upscore_pool4": (1, 1), "upscore8": (4, 4),
    }


def test_score_layers_zero_and_upsampling_bilinear_at_init() -> None:
    model = fcn8s()
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert getattr(model, name).weight.abs().sum() == 0
    assert model.upscore8.bias is None and model.upscore8.kernel_size == (16, 16)
    assert model.upscore2.weight.requires_grad and not model.upscore8.weight.requires_grad
    assert not fcn32s().upscore.weight.requires_grad
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 40)).abs().max() == 0


def test_fcn32s_upscore_equals_f_interpolate_in_interior() -> None:
    model = fcn32s(num_classes=3).eval()
    nn.init.normal_(model.score_fr.weight, std=0.5)
    store: dict[str, torch.Tensor] = {}
    _hook_output(model.score_fr, store, "score")
    x = torch.randn(1, 3, 160, 192)
    with torch.no_grad():
        out = model(x)
    ref = F.interpolate(store["score"], scale_factor=32, mode="bilinear", align_corners=False)
    ref = ref[..., :160, :192]
    torch.testing.assert_close(_interior(out), _interior(ref), rtol=1e-5, atol=1e-5)
    assert (out - ref).abs().max() > 1e-3  # they differ at the border (zero vs edge padding)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_affine_coarse_scores_upsample_to_the_same_plane(variant: str) -> None:
    # If score_fr is a plane a*i + b*j + c, bilinear steps keep it a plane, so every variant
    # must output that plane at the input pixel's coarse coordinate (x - 15.5) / 32: a crop
    # off by one pixel anywhere would shift it.
    model = BUILDERS[variant](num_classes=2).eval()
    h, w = 192, 224
    i = torch.arange(h // 32, dtype=torch.float32).view(-1, 1)
    j = torch.arange(w // 32, dtype=torch.float32).view(1, -1)
    plane = torch.stack([0.7 * i - 0.3 * j + 1.0, -0.2 * i + 0.5 * j])[None]  # (1, 2, 6, 7)
    model.score_fr.register_forward_hook(lambda *_: plane)
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w))
    y = (torch.arange(h, dtype=torch.float32).view(-1, 1) - 15.5) / 32
    x = (torch.arange(w, dtype=torch.float32).view(1, -1) - 15.5) / 32
    expected = torch.stack([0.7 * y - 0.3 * x + 1.0, -0.2 * y + 0.5 * x])[None]
    torch.testing.assert_close(_interior(out), _interior(expected), rtol=1e-5, atol=1e-5)


def test_fcn16s_from_fcn32s_predicts_what_fcn32s_did() -> None:
    torch.manual_seed(4)
    model32 = fcn32s(num_classes=3).eval()
    nn.init.normal_(model32.score_fr.weight, std=0.3)
    nn.init.normal_(model32.score_fr.bias, std=0.3)
    model16 = fcn16s_from_fcn32s(model32)
    assert isinstance(model16, FCN16s) and not model16.training
    assert model16.score_pool4.weight.abs().sum() == 0
    for key, value in model32.backbone.state_dict().items():
        assert torch.equal(model16.backbone.state_dict()[key], value)
    store: dict[str, torch.Tensor] = {}
    _hook_output(model32.score_fr, store, "score")
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        out32, out16 = model32(x), model16(x)
    bound = _second_difference_bound(store["score"])
    gap = (_interior(out16) - _interior(out32)).abs().max().item()
    assert 0 < gap <= bound + 1e-5
    # The copy is deep: training the new model leaves the old one as it was.
    with torch.no_grad():
        model16.backbone.fc6.weight.add_(1)
    assert not torch.equal(model16.backbone.fc6.weight, model32.backbone.fc6.weight)


def test_fcn8s_from_fcn16s_predicts_what_fcn16s_did() -> None:
    torch.manual_seed(5)
    model16 = fcn16s(num_classes=3).eval()
    for layer in (model16.score_fr, model16.score_pool4):
        nn.init.normal_(layer.weight, std=0.3)
    nn.init.normal_(model16.upscore2.weight, mean=0.1, std=0.05)  # as if trained
    model8 = fcn8s_from_fcn16s(model16)
    assert isinstance(model8, FCN8s)
    assert torch.equal(model8.upscore2.weight, model16.upscore2.weight)
    assert torch.equal(model8.score_pool4.weight, model16.score_pool4.weight)
    store: dict[str, torch.Tensor] = {}
    _hook_input(model16.upscore16, store, "fuse_pool4")
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        out16, out8 = model16(x), model8(x)
    bound = _second_difference_bound(store["fuse_pool4"])
    gap = (_interior(out8) - _interior(out16)).abs().max().item()
    assert 0 < gap <= bound + 1e-5


def test_skip_scaling_equals_scaled_skip_weights() -> None:
    # score_pool4(0.01 * pool4) is score_pool4 with 0.01 * weight: a 1x1 conv is linear.
    torch.manual_seed(6)
    scaled = fcn8s(num_classes=3, skip_scaling=True).eval()
    for layer in (scaled.score_fr, scaled.score_pool4, scaled.score_pool3):
        nn.init.normal_(layer.weight)
        nn.init.normal_(layer.bias)
    plain = fcn8s(num_classes=3).eval()
    plain.load_state_dict(scaled.state_dict())
    with torch.no_grad():
        plain.score_pool4.weight.mul_(0.01)
        plain.score_pool3.weight.mul_(0.0001)
        x = torch.randn(1, 3, 64, 96)
        torch.testing.assert_close(scaled(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_every_trainable_parameter_gets_a_gradient(variant: str) -> None:
    torch.manual_seed(7)
    model = BUILDERS[variant](num_classes=4).train()
    for name in ("score_fr", "score_pool4", "score_pool3"):
        if hasattr(model, name):  # zero at init: nothing upstream would get a gradient
            nn.init.normal_(getattr(model, name).weight, std=0.1)
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 4, (2, 64, 64))
    F.cross_entropy(model(x), target).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing
    groups = list(model.backbone_parameters()) + list(model.head_parameters())
    assert {id(p) for p in groups} == {id(p) for _, p in trainable}
    assert len(groups) == len(trainable)


def test_fcn_from_trained_course_classifier_copies_it() -> None:
    classifier = _default_init(course_vgg(), seed=8)
    model = fcn8s(backbone=classifier)
    assert torch.equal(model.backbone.features.conv1_1.weight, classifier.features.conv1_1.weight)
    assert torch.equal(
        model.backbone.fc6.weight.flatten(1), classifier.classifier.fc6.weight
    )
    assert model.backbone.fc6.padding == (1, 1) and model.backbone.fc8 is None
    assert classifier.classifier.fc8.out_features == 6  # the classifier itself is untouched
    conv = convolutionalize(classifier)
    fcn32s(backbone=conv)
    assert conv.fc8 is not None and conv.fc6.padding == (0, 0)


def test_fcn_with_vgg16_backbone() -> None:
    torch.manual_seed(9)
    model = fcn8s(backbone="vgg16", num_classes=21).eval()
    assert model.backbone.fc6.kernel_size == (7, 7) and model.backbone.fc6.padding == (3, 3)
    assert model.score_pool4.in_channels == 512 and model.score_pool3.in_channels == 256
    assert model.crop_offsets == {"upscore2": (1, 1), "upscore_pool4": (1, 1), "upscore8": (4, 4)}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 21, 224, 224)


# ------------------------------------------------------------------------- complexity


def test_flops_of_one_convolution_match_the_formula() -> None:
    c_in, c_out, k, h, w = 5, 7, 3, 20, 24
    layer = nn.Conv2d(c_in, c_out, k, padding=k // 2)
    assert count_flops(layer, (h, w), in_channels=c_in) == 2 * c_in * c_out * k * k * h * w
    assert count_flops(layer, h, in_channels=c_in, batch_size=2) == 4 * c_in * c_out * k * k * h * h


def test_count_parameters() -> None:
    assert count_parameters(nn.Linear(3, 4)) == 3 * 4 + 4
    model = fcn32s(num_classes=7)
    frozen = 7 * 7 * 64 * 64  # the fixed bilinear upscore
    assert count_parameters(model) - count_parameters(model, trainable_only=True) == frozen
    assert count_parameters(course_vgg()) == sum(p.numel() for p in course_vgg().parameters())


# ------------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise_clear_errors() -> None:
    model = fcn32s()
    with pytest.raises(ValueError, match=r"argument 'x' expected a 4-d tensor.*unsqueeze"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"expected 3 channels in dim -3"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"argument 'backbone' expected one of 'course', 'vgg16'"):
        fcn8s(backbone="resnet50")
    with pytest.raises(TypeError, match="argument 'backbone' expected None"):
        fcn16s(backbone=3)
    with pytest.raises(ValueError, match="argument 'num_classes' expected a positive int"):
        fcn16s(num_classes=0)
    with pytest.raises(TypeError, match="argument 'num_classes' expected an int"):
        fcn32s(num_classes=2.0)
    with pytest.raises(ValueError, match="fc6 with an odd kernel"):
        fcn32s(backbone=course_vgg(input_size=128))
    with pytest.raises(ValueError, match="weights_backbone"):
        fcn32s(weights_backbone="DEFAULT")
    with pytest.raises(ValueError, match="argument 'weights' expected None, a VGG16_Weights"):
        vgg16(weights="IMAGENET_BOGUS")
    with pytest.raises(ValueError, match="resize to 96x96"):
        course_vgg()(torch.randn(1, 3, 128, 128))
    with pytest.raises(TypeError, match="argument 'widths' expected five channel counts"):
        course_vgg(widths=(16, 32))
    with pytest.raises(TypeError, match="argument 'model32' expected an FCN32s"):
        fcn16s_from_fcn32s(fcn16s())
    with pytest.raises(ValueError, match="argument 'dropout' expected a probability"):
        course_vgg(dropout=1.5)
    with pytest.raises(TypeError, match="argument 'backbone' expected a ConvolutionalizedVGG"):
        FCN32s(course_vgg(), num_classes=3)


def test_public_types() -> None:
    net = convolutionalize(course_vgg())
    assert isinstance(net, ConvolutionalizedVGG)
    assert net.coord_map("pool5") == CoordMap.square(AxisMap(32, Fraction(31, 2)))
    # fc6 (3x3, unpadded) centres its window one pool5 pixel, 32 input pixels, further in.
    assert math.isclose(float(net.coord_map("fc7").y.offset), 15.5 + 32)
