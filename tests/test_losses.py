"""Tests of fcn_course.losses, with torch.nn.functional.cross_entropy as the oracle."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from fcn_course.losses import class_weights_from_counts, pixel_cross_entropy


def make_batch(
    seed: int = 0, *, n: int = 2, c: int = 4, h: int = 5, w: int = 6, void: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, c, (n, h, w), generator=g)
    if void:
        target[torch.rand(n, h, w, generator=g) < 0.2] = 255
    return logits, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch_in_every_mode(reduction: str, weighted: bool) -> None:
    logits, target = make_batch()
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64) if weighted else None
    ours_in = logits.clone().requires_grad_()
    torch_in = logits.clone().requires_grad_()
    ours = pixel_cross_entropy(ours_in, target, weight=weight, reduction=reduction)
    oracle = F.cross_entropy(torch_in, target, weight=weight, ignore_index=255, reduction=reduction)
    torch.testing.assert_close(ours, oracle)
    ours.sum().backward()
    oracle.sum().backward()
    torch.testing.assert_close(ours_in.grad, torch_in.grad)


@pytest.mark.parametrize("ignore_index", [-100, 0, 2])
def test_other_ignore_labels_match_torch(ignore_index: int) -> None:
    logits, target = make_batch(1, void=False)
    ours = pixel_cross_entropy(logits, target, ignore_index=ignore_index)
    oracle = F.cross_entropy(logits, target, ignore_index=ignore_index)
    torch.testing.assert_close(ours, oracle)


def test_ignored_pixels_contribute_nothing() -> None:
    logits, target = make_batch(2)
    void = target == 255
    per_pixel = pixel_cross_entropy(logits, target, reduction="none")
    assert per_pixel.shape == target.shape
    assert bool((per_pixel[void] == 0).all())
    # Changing the scores of void pixels changes neither the sum nor the mean.
    changed = logits.clone()
    changed[void.unsqueeze(1).expand_as(logits)] = 100.0
    for reduction in ("sum", "mean"):
        torch.testing.assert_close(
            pixel_cross_entropy(changed, target, reduction=reduction),
            pixel_cross_entropy(logits, target, reduction=reduction),
        )
    # The mean divides by the labelled pixels only: sum = mean * count.
    total = pixel_cross_entropy(logits, target, reduction="sum")
    mean = pixel_cross_entropy(logits, target, reduction="mean")
    torch.testing.assert_close(total, mean * (~void).sum())


def test_hand_computed_two_pixel_loss() -> None:
    logits = torch.tensor([[[[0.0, 2.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert pixel_cross_entropy(logits, target).item() == pytest.approx(expected)


def test_all_pixels_ignored_gives_nan_mean_like_torch() -> None:
    logits, target = make_batch(3)
    target.fill_(255)
    assert math.isnan(pixel_cross_entropy(logits, target).item())
    assert math.isnan(F.cross_entropy(logits, target, ignore_index=255).item())
    assert pixel_cross_entropy(logits, target, reduction="sum").item() == 0.0


def test_uint8_target_is_accepted() -> None:
    logits, target = make_batch(4)
    torch.testing.assert_close(
        pixel_cross_entropy(logits, target.to(torch.uint8)), pixel_cross_entropy(logits, target)
    )


def test_float32_weights_follow_float64_logits() -> None:
    logits, target = make_batch(5)
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0])
    oracle = F.cross_entropy(logits, target, weight=weight.double(), ignore_index=255)
    torch.testing.assert_close(pixel_cross_entropy(logits, target, weight=weight), oracle)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda x, t: (x, t.masked_fill(t == 1, 7)), ValueError, r"values \{7\}.*ignore_index=7"),
        (lambda x, t: (x, t.masked_fill(t == 1, -1)), ValueError, r"range\(4\).*values \{-1\}"),
        (lambda x, t: (x, t[:, :4]), ValueError, r"H: 5 vs 4.*F\.interpolate"),
        (lambda x, t: (x, t[:1]), ValueError, r"N: 2 vs 1"),
        (lambda x, t: (x, t.float()), TypeError, r"'target' expected an integer tensor"),
        (lambda x, t: (x, t > 0), TypeError, r"'target'.*torch.bool"),
        (lambda x, t: (x, t.unsqueeze(1)), ValueError, r"target.squeeze\(1\)"),
        (lambda x, t: (x[0], t), ValueError, r"'logits' expected a 4-d tensor \(N, C, H, W\)"),
        (lambda x, t: (x.long(), t), TypeError, r"'logits' expected a floating-point tensor"),
        (lambda x, t: (x, t.numpy()), TypeError, r"'target' expected a torch.Tensor"),
    ],
)
def test_bad_logits_and_targets(
    change: Callable[[torch.Tensor, torch.Tensor], tuple[object, object]],
    error: type[Exception],
    match: str,
) -> None:
    logits, target = make_batch(6)
    logits, target = change(logits, target)
    with pytest.raises(error, match=match):
        pixel_cross_entropy(logits, target)


def test_void_label_with_wrong_ignore_index_suggests_255() -> None:
    logits, target = make_batch(7)
    with pytest.raises(ValueError, match=r"values \{255\}.*pass ignore_index=255"):
        pixel_cross_entropy(logits, target, ignore_index=-100)


@pytest.mark.parametrize(
    ("weight", "error", "match"),
    [
        (torch.ones(3, dtype=torch.float64), ValueError, r"one weight per class, C = .* = 4"),
        (torch.tensor([1.0, -1.0, 1.0, 1.0]), ValueError, r"non-negative"),
        (torch.tensor([1.0, math.nan, 1.0, 1.0]), ValueError, r"finite"),
        (torch.ones(4, dtype=torch.long), TypeError, r"'weight' expected a floating-point"),
        (torch.ones(1, 4), ValueError, r"'weight' expected a 1-d tensor \(C,\)"),
    ],
)
def test_bad_weights(weight: torch.Tensor, error: type[Exception], match: str) -> None:
    logits, target = make_batch(8)
    with pytest.raises(error, match=match):
        pixel_cross_entropy(logits, target, weight=weight)


def test_bad_reduction_and_ignore_index() -> None:
    logits, target = make_batch(9)
    with pytest.raises(ValueError, match=r"'reduction' expected one of 'mean', 'sum', 'none'"):
        pixel_cross_entropy(logits, target, reduction="avg")
    with pytest.raises(TypeError, match=r"'ignore_index' expected an int"):
        pixel_cross_entropy(logits, target, ignore_index=255.0)


def test_inverse_frequency_formula() -> None:
    counts = [10, 30, 60]
    # w_c = 1 / (K * freq_c), K = 3 classes present
    expected = [1 / (3 * 0.1), 1 / (3 * 0.3), 1 / (3 * 0.6)]
    weights = class_weights_from_counts(counts)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, torch.tensor(expected))
    # A pixel's expected weight is 1, so the weighted loss keeps the scale of the plain one.
    freq = torch.tensor(counts) / 100
    assert (freq * weights).sum().item() == pytest.approx(1.0)


def test_median_frequency_formula() -> None:
    # freq = (0.1, 0.3, 0.6): median 0.3, so w = 0.3 / freq
    weights = class_weights_from_counts(torch.tensor([10, 30, 60]), method="median_frequency")
    torch.testing.assert_close(weights, torch.tensor([3.0, 1.0, 0.5]))
    # Four classes: the median averages the two middle frequencies (0.2 + 0.3) / 2 = 0.25.
    weights = class_weights_from_counts([10, 20, 30, 40], method="median_frequency")
    torch.testing.assert_close(weights, torch.tensor([2.5, 1.25, 0.25 / 0.3, 0.625]))


def test_absent_class_gets_zero_weight() -> None:
    weights = class_weights_from_counts([10, 0, 30], method="median_frequency")
    # present freqs (0.25, 0.75), median 0.5
    torch.testing.assert_close(weights, torch.tensor([2.0, 0.0, 2 / 3]))
    logits, target = make_batch(10, c=3)
    pixel_cross_entropy(logits, target, weight=weights)  # accepted by the loss


def test_per_image_counts_use_eigen_fergus_frequency() -> None:
    counts = torch.tensor([[10, 0, 30, 60], [0, 5, 5, 0]])  # image sizes 100 and 10
    # freq_c = pixels of c / pixels of the images containing c
    freq = torch.tensor([10 / 100, 5 / 10, 35 / 110, 60 / 100], dtype=torch.float64)
    median = (35 / 110 + 5 / 10) / 2
    weights = class_weights_from_counts(counts, method="median_frequency")
    torch.testing.assert_close(weights, (median / freq).float())


@pytest.mark.parametrize(
    ("counts", "kwargs", "error", "match"),
    [
        ([1, -2, 3], {}, ValueError, r"non-negative"),
        ([0, 0, 0], {}, ValueError, r"at least one class with pixels"),
        ([1, 2], {"method": "median"}, ValueError, r"'inverse_frequency', 'median_frequency'"),
        (torch.ones(2, 2, 2), {}, ValueError, r"'counts' expected a 1-d or 2-d tensor"),
        ("abc", {}, TypeError, r"'counts' expected"),
        ([], {}, ValueError, r"at least one class"),
    ],
)
def test_bad_counts(
    counts: object, kwargs: dict[str, str], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        class_weights_from_counts(counts, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_torch_with_cpu_weights() -> None:
    logits, target = make_batch(11)
    logits, target = logits.float().cuda(), target.cuda()
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0])
    ours = pixel_cross_entropy(logits, target, weight=weight)
    oracle = F.cross_entropy(logits, target, weight=weight.cuda(), ignore_index=255)
    assert ours.device == logits.device
    torch.testing.assert_close(ours, oracle)
