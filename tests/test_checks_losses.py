"""The pixel-loss checkers have teeth: right answers pass, typical wrong answers are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fcn_course.checks import CheckFailure, check_class_weights, check_pixel_cross_entropy
from fcn_course.losses import class_weights_from_counts, pixel_cross_entropy

# ---- losses a student might write (independent of the checker's own list of mistakes)


def _reduce(losses, valid, pixel_weight, reduction):
    """The reductions as a student writes them, from masked per-pixel losses."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / (pixel_weight * valid).sum()


def loss_right(logits, target, ignore_index=255, weight=None, reduction="mean"):
    valid = target != ignore_index
    labels = target.masked_fill(~valid, 0)
    shifted = logits - logits.amax(dim=1, keepdim=True)
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    nll = -torch.gather(log_probs, 1, labels[:, None]).squeeze(1)
    pixel_weight = torch.ones_like(nll) if weight is None else weight[labels]
    losses = (nll * pixel_weight).masked_fill(~valid, 0.0)
    return _reduce(losses, valid, pixel_weight, reduction)


def loss_torch(logits, target, ignore_index=255, weight=None, reduction="mean"):
    return F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction
    )


def _student(
    *, labels="masked", softmax_dim=1, log="stable", weight_of="target", sign=-1.0
):
    """A student's loss with one mistake in how pixels are scored."""

    def loss(logits, target, ignore_index=255, weight=None, reduction="mean"):
        valid = target != ignore_index
        if labels == "clamped":  # 255 squeezed into range(C), every pixel counted
            index, valid = target.clamp(max=logits.shape[1] - 1), torch.ones_like(valid)
        elif labels == "zero":  # void read as class 0 to make gather legal, never masked
            index, valid = target.masked_fill(~valid, 0), torch.ones_like(valid)
        elif labels == "fixed_255":
            valid = target != 255
            index = target.masked_fill(~valid, 0)
        else:
            index = target.masked_fill(~valid, 0)
        if log == "stable":
            log_probs = F.log_softmax(logits, dim=softmax_dim)
        else:
            probs = logits.exp() / logits.exp().sum(dim=softmax_dim, keepdim=True)
            log_probs = torch.log(probs)
        nll = sign * log_probs.gather(1, index.unsqueeze(1))[:, 0]
        if weight is None or weight_of == "nothing":
            pixel_weight = torch.ones_like(nll)
        elif weight_of == "prediction":
            pixel_weight = weight[logits.argmax(dim=1)]
        else:
            pixel_weight = weight[index]
        losses = torch.where(valid, nll * pixel_weight, torch.zeros_like(nll))
        return _reduce(losses, valid, pixel_weight, reduction)

    return loss


def _student_reduction(how):
    """A student's loss, right per pixel, with one mistake in how it is reduced."""

    def loss(logits, target, ignore_index=255, weight=None, reduction="mean"):
        valid = target != ignore_index
        index = target.masked_fill(~valid, 0)
        nll = -F.log_softmax(logits, dim=1).gather(1, index.unsqueeze(1))[:, 0]
        pixel_weight = torch.ones_like(nll) if weight is None else weight[index]
        losses = torch.where(valid, nll * pixel_weight, torch.zeros_like(nll))
        if how == "all_pixels" and reduction == "mean":
            return losses.sum() / target.numel()
        if how == "count" and reduction == "mean":
            return losses.sum() / valid.sum()
        if how == "per_image" and reduction == "mean":
            per_image = losses.flatten(1).sum(1) / (pixel_weight * valid).flatten(1).sum(1)
            return per_image.nanmean()
        if how == "always_mean":
            return losses.sum() / (pixel_weight * valid).sum()
        if how == "none_unmasked" and reduction == "none":
            return nll * pixel_weight
        if how == "map":
            return losses
        if how == "item":
            return _reduce(losses, valid, pixel_weight, reduction).item()
        if how == "detached":
            return _reduce(losses, valid, pixel_weight, reduction).detach()
        if how == "numpy":
            return _reduce(losses, valid, pixel_weight, reduction).detach().numpy()
        return _reduce(losses, valid, pixel_weight, reduction)

    return loss


def loss_edits_target(logits, target, ignore_index=255, weight=None, reduction="mean"):
    valid = target != ignore_index
    target[~valid] = 0  # writes into the caller's mask
    return loss_right(logits, target.masked_fill(~valid, ignore_index), ignore_index, weight,
                      reduction)


def loss_forgets_return(logits, target, ignore_index=255, weight=None, reduction="mean"):
    loss_right(logits, target, ignore_index, weight, reduction)


def loss_keyword_only_misnamed(logits, target, ignore=255, weight=None, reduction="mean"):
    return loss_right(logits, target, ignore, weight, reduction)


# ---- class weights a student might write


def weights_right(counts, method="inverse_frequency"):
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / counts.sum()
    present = counts > 0
    weights = np.zeros_like(freq)
    if method == "inverse_frequency":
        weights[present] = 1.0 / (present.sum() * freq[present])
    else:
        weights[present] = np.median(freq[present]) / freq[present]
    return torch.from_numpy(weights)


def _weights_student(how):
    def weights(counts, method="inverse_frequency"):
        counts = counts.double()
        freq = counts / counts.sum()
        present = counts > 0
        k = present.sum()
        if how == "all_classes_in_k":
            k = counts.numel()
        if method == "inverse_frequency":
            w = {
                "no_k": 1.0 / freq,
                "sum_to_one": (1.0 / freq) / (1.0 / freq[present]).sum(),
                "counts": 1.0 / (k * counts),
            }.get(how, 1.0 / (k * freq))
        else:
            if how == "torch_median":
                median = freq[present].median()
            elif how == "zeros_in_median":
                median = freq.quantile(0.5)
            else:
                median = freq[present].quantile(0.5)
            w = median / freq
        return w if how == "unguarded" else torch.where(present, w, torch.zeros_like(w))

    return weights


# ---- the tests


def test_right_answers_pass_with_one_stable_line(capsys: pytest.CaptureFixture[str]) -> None:
    check_pixel_cross_entropy(pixel_cross_entropy)
    check_pixel_cross_entropy(loss_right)
    check_pixel_cross_entropy(loss_torch)
    check_class_weights(class_weights_from_counts)
    check_class_weights(weights_right)
    line_loss = (
        "PASS pixel_cross_entropy: all 14 cases agree with fcn_course.losses.pixel_cross_entropy"
    )
    line_weights = (
        "PASS class_weights_from_counts: all 10 cases agree with "
        "fcn_course.losses.class_weights_from_counts"
    )
    assert capsys.readouterr().out.splitlines() == [line_loss] * 3 + [line_weights] * 2


def test_checkers_leave_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    check_pixel_cross_entropy(loss_right)
    check_class_weights(weights_right)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (_student(labels="clamped"), r"case 1 of 14(?s:.*)diagnosis: .*void pixels are counted"),
        (_student(labels="zero"), r"case 1 of 14(?s:.*)diagnosis: .*scored as class 0 and "
                                  r"never masked"),
        (_student_reduction("all_pixels"), r"case 1 of 14(?s:.*)diagnosis: .*the mean divides "
                                           r"by every pixel, void ones included"),
        (_student_reduction("per_image"), r"case 1 of 14(?s:.*)diagnosis: .*mean is taken per "
                                          r"image"),
        (_student(softmax_dim=0), r"case 1 of 14(?s:.*)diagnosis: .*softmax runs over dim 0"),
        (_student(softmax_dim=3), r"case 1 of 14(?s:.*)diagnosis: .*softmax runs over the "
                                  r"last dim"),
        (_student(sign=1.0), r"diagnosis: .*the minus sign is missing"),
        (_student_reduction("always_mean"), r"case 2 of 14: .*reduction='sum'(?s:.*)"
                                            r"diagnosis: .*reduction argument is ignored"),
        (_student(weight_of="nothing"), r"case 7 of 14: .*weight=\[0\.5, 2\.0, 1\.0, 3\.0\]"
                                        r"(?s:.*)diagnosis: .*class weights are ignored"),
        (_student_reduction("count"), r"case 7 of 14(?s:.*)diagnosis: .*weighted mean divides "
                                      r"by the number of labelled pixels"),
        (_student(weight_of="prediction"), r"case 7 of 14(?s:.*)diagnosis: .*indexed by the "
                                           r"predicted class"),
        (_student(log="naive"), r"case 10 of 14: .*logits span 120(?s:.*)got:\s+tensor\(\) inf"
                                r"(?s:.*)diagnosis: .*log\(softmax\(\.\.\.\)\) underflows"),
        (_student_reduction("none_unmasked"), r"case 11 of 14: .*reduction='none'(?s:.*)"
                                              r"diagnosis: .*'none' keeps a loss at void pixels"),
        (_student(labels="fixed_255"), r"case 13 of 14: .*ignore_index=0(?s:.*)diagnosis: .*"
                                       r"ignore label is written into the code as 255"),
    ],
)
def test_typical_loss_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_pixel_cross_entropy(student)
    assert str(failure.value).count("diagnosis:") == 1


def test_an_all_void_image_among_labelled_ones_is_checked() -> None:
    # Per-image means weighted by their pixel counts equal the batch mean, except that an
    # image without a labelled pixel has a NaN mean, and NaN * 0 is NaN.
    def count_weighted_image_means(logits, target, ignore_index=255, weight=None,
                                   reduction="mean"):
        if reduction != "mean":
            return loss_right(logits, target, ignore_index, weight, reduction)
        means, counts = [], []
        for x, t in zip(logits, target, strict=True):
            means.append(loss_right(x[None], t[None], ignore_index, weight))
            valid = t != ignore_index
            counts.append(valid.sum() if weight is None else weight[t[valid]].sum())
        means, counts = torch.stack(means), torch.stack(counts).to(logits.dtype)
        return (means * counts).sum() / counts.sum()

    with pytest.raises(
        CheckFailure,
        match=r"raised RuntimeError on case 4 of 14: .*target \(3, 5, 7\).*per image: \d+, "
        r"35, \d+(?s:.*)found NaN in your result(?s:.*)an image without labelled pixels",
    ):
        check_pixel_cross_entropy(count_weighted_image_means)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (_student_reduction("map"), r"case 1 of 14(?s:.*)expected shape \(\), got shape "
                                    r"\(2, 4, 5\)(?s:.*)diagnosis: .*per-pixel loss map is "
                                    r"returned"),
        (_student_reduction("item"), r"expected a torch.Tensor, got float(?s:.*)diagnosis: .*"
                                     r"returned as a Python number"),
        (_student_reduction("numpy"), r"expected a torch.Tensor, got ndarray"),
        (loss_forgets_return, r"expected a torch.Tensor, got NoneType"),
        (_student_reduction("detached"), r"raised RuntimeError on case 1 of 14(?s:.*)not "
                                         r"connected to logits by autograd"),
        (loss_edits_target, r"changed its argument target in place"),
        (loss_keyword_only_misnamed, r"raised TypeError(?s:.*)unexpected keyword argument "
                                     r"'ignore_index'"),
    ],
)
def test_wrong_types_shapes_and_side_effects_fail_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_pixel_cross_entropy(student)


def test_stub_and_non_callable_are_reported() -> None:
    def stub(logits, target, ignore_index=255, weight=None, reduction="mean"):
        raise NotImplementedError("use log_softmax over dim=1")

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)use log_softmax"):
        check_pixel_cross_entropy(stub)
    with pytest.raises(TypeError, match=r"pass the function itself"):
        check_pixel_cross_entropy(loss_right(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1).long()))


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("no_k", r"case 1 of 10(?s:.*)diagnosis: .*without the factor 1 / K"),
        ("sum_to_one", r"case 1 of 10(?s:.*)diagnosis: .*normalised to sum to 1"),
        ("counts", r"case 1 of 10(?s:.*)diagnosis: .*computed from the counts"),
        ("torch_median", r"case 4 of 10: .*\[400, 100, 250, 50\](?s:.*)diagnosis: .*"
                         r"torch\.median"),
        ("all_classes_in_k", r"case 5 of 10: .*\[700, 0, 200, 100\](?s:.*)diagnosis: .*K counts "
                             r"every class"),
        ("zeros_in_median", r"case 6 of 10(?s:.*)diagnosis: .*median runs over every class"),
        ("unguarded", r"case 5 of 10(?s:.*)got:.*inf(?s:.*)diagnosis: .*infinite weight"),
    ],
)
def test_typical_class_weight_mistakes_are_named(how: str, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_class_weights(_weights_student(how))
    assert str(failure.value).count("diagnosis:") == 1


def test_class_weights_as_a_list_fail_clearly() -> None:
    with pytest.raises(CheckFailure, match=r"expected a torch.Tensor, got list"):
        check_class_weights(lambda counts, method="inverse_frequency": weights_right(
            counts, method).tolist())
