"""Checkers for the exercise on the pixel-wise loss (chapter "Training with a pixel-wise loss").

The student writes the FCN's training loss, a cross-entropy per pixel that skips void pixels
and may weight classes, and the class weights of a data set from its pixel counts. The
references are :func:`fcn_course.losses.pixel_cross_entropy` (equal to
``F.cross_entropy(logits, target, weight=..., ignore_index=..., reduction=...)``) and
:func:`fcn_course.losses.class_weights_from_counts`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fcn_course.checks._core import Case, Mistake, run_checks
from fcn_course.losses import class_weights_from_counts, pixel_cross_entropy

__all__ = ["check_class_weights", "check_pixel_cross_entropy"]

VOID = 255

# ----------------------------------------------------------------------------- loss cases


@dataclass(frozen=True)
class _LossCase(Case):
    """A case whose description gives the shapes and the void pixels, not tensor values."""

    def describe(self, func_name: str) -> str:
        logits, target = self.args
        parts = [f"logits {tuple(logits.shape)}", f"target {tuple(target.shape)}"]
        for key, value in self.kwargs.items():
            shown = [round(v, 4) for v in value.tolist()] if key == "weight" else repr(value)
            parts.append(f"{key}={shown}")
        ignore = self.kwargs.get("ignore_index", VOID)
        void = target == ignore
        per_image = ", ".join(str(int(v)) for v in void.flatten(1).sum(1))
        spread = float(logits.max() - logits.min())
        return (
            f"{func_name}({', '.join(parts)}), where the target has {int(void.sum())} of "
            f"{target.numel()} pixels void (= {ignore}), per image: {per_image}; "
            f"logits span {spread:.3g}"
        )


#: ``(N, C, H, W, void fraction per image, fraction of confidently wrong pixels, keyword
#: arguments)``, in the order a typical mistake first shows: void pixels and the mean, then
#: the sum, odd sizes, an image that is all void, class weights, confidently wrong pixels
#: (which break log(softmax)), per-pixel losses, another ignore label.
_LOSS_SHAPES: tuple[tuple[int, int, int, int, tuple[float, ...], float, dict[str, Any]], ...] = (
    (2, 3, 4, 5, (0.2, 0.4), 0.0, {}),
    (2, 3, 4, 5, (0.3, 0.1), 0.0, {"reduction": "sum"}),
    (1, 5, 6, 3, (0.5,), 0.0, {"reduction": "mean"}),
    (3, 4, 5, 7, (0.1, 1.0, 0.25), 0.0, {}),
    (3, 4, 5, 7, (0.2, 1.0, 0.1), 0.0, {"reduction": "sum"}),
    (2, 2, 7, 3, (0.0, 0.0), 0.0, {}),
    (2, 4, 3, 6, (0.25, 0.1), 0.0, {"weight": (0.5, 2.0, 1.0, 3.0)}),
    (2, 3, 5, 4, (0.2, 0.3), 0.0, {"weight": (1.5, 0.25, 4.0), "reduction": "sum"}),
    (3, 4, 4, 6, (0.15, 1.0, 0.3), 0.0, {"weight": (0.0, 1.0, 2.5, 0.7), "reduction": "mean"}),
    (2, 5, 4, 6, (0.2, 0.1), 0.3, {}),
    (2, 3, 4, 5, (0.3, 0.2), 0.0, {"reduction": "none"}),
    (2, 4, 3, 5, (0.2, 0.4), 0.0, {"weight": (2.0, 0.5, 1.0, 1.5), "reduction": "none"}),
    (2, 4, 3, 5, (0.0, 0.0), 0.0, {"ignore_index": 0}),
    (4, 3, 1, 9, (0.2, 0.0, 1.0, 0.4), 0.3, {"weight": (1.0, 3.0, 0.5), "reduction": "sum"}),
)

#: Score of the true class and of a wrong one at a confidently wrong pixel: the true class's
#: probability, exp(-120) ~ 1e-52, is below float32's smallest number (~1.4e-45), while
#: exp(60) still fits, so only the log of a probability that underflowed to 0 goes wrong.
_SURE_AND_WRONG = 60.0


def _loss_cases(seed: int = 0) -> list[_LossCase]:
    """Fresh float32 tensors for every check, so an answer that edits them harms nothing."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for n, c, h, w, void, wrong, options in _LOSS_SHAPES:
        logits = torch.randn(n, c, h, w, generator=gen) * 3  # (N, C, H, W)
        target = torch.randint(0, c, (n, h, w), generator=gen)  # (N, H, W)
        sure = (torch.rand(n, h, w, generator=gen) < wrong).unsqueeze(1)  # (N, 1, H, W)
        true_class = torch.nn.functional.one_hot(target, c).permute(0, 3, 1, 2).bool()
        next_class = true_class.roll(1, dims=1)  # (N, C, H, W)
        logits[sure & true_class] = -_SURE_AND_WRONG
        logits[sure & next_class] = _SURE_AND_WRONG
        for i, fraction in enumerate(void):
            target[i][torch.rand(h, w, generator=gen) < fraction] = VOID
            if fraction == 1.0:
                target[i] = VOID
        kwargs = dict(options)
        if "weight" in kwargs:
            kwargs["weight"] = torch.tensor(kwargs["weight"])
        cases.append(_LossCase(args=(logits, target), kwargs=kwargs))
    return cases


# ----------------------------------------------------------------------------- loss mistakes


def _loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = VOID,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    void: str = "mask",
    denominator: str = "weights",
    dim: int = 1,
    log: str = "log_softmax",
    weight_by: str = "target",
    sign: float = -1.0,
    only_mean: bool = False,
    none_masked: bool = True,
    fixed_ignore: int | None = None,
    only_none: bool = False,
    as_number: bool = False,
) -> torch.Tensor | float:
    """The loss, right by default, and with one typical mistake per keyword.

    ``void``: ``"mask"``, ``"clamp"`` (labels clamped into ``range(C)``, no mask) or
    ``"zero"`` (void read as class 0, no mask). ``denominator`` of the mean: ``"weights"``
    (summed weight of the labelled pixels), ``"all"`` (summed weight of every pixel, void
    ones too), ``"count"`` (number of labelled pixels) or ``"per_image"`` (a mean per image,
    then over the batch). ``dim``: where the softmax runs. ``log``: ``"log_softmax"`` or
    ``"log_of_softmax"``. ``weight_by``: ``"target"``, ``"prediction"`` or ``"nothing"``.
    ``sign``: -1 for the negative log-likelihood. ``only_mean``: ``reduction`` ignored.
    ``none_masked``: zeros at void pixels for ``reduction="none"``. ``fixed_ignore``: an
    ignore label written into the code instead of the argument. ``only_none``: the
    per-pixel map whatever the reduction. ``as_number``: a Python float, not a tensor.
    """
    if as_number:
        return float(_loss(logits, target, ignore_index, weight, reduction))
    ignore = ignore_index if fixed_ignore is None else fixed_ignore
    target = target.long()
    num_classes = logits.shape[1]
    valid = target != ignore  # (N, H, W)
    label = torch.where(valid, target, 0)
    if void == "clamp":
        label = target.clamp(0, num_classes - 1)
        valid = torch.ones_like(valid)
    elif void == "zero":
        valid = torch.ones_like(valid)
    if log == "log_softmax":
        log_probs = logits.log_softmax(dim)  # (N, C, H, W)
    else:
        log_probs = logits.softmax(dim).log()
    nll = sign * log_probs.gather(1, label.unsqueeze(1)).squeeze(1)  # (N, H, W)
    if weight is None or weight_by == "nothing":
        pixel_weight = torch.ones_like(nll)
    elif weight_by == "target":
        pixel_weight = weight.to(nll.dtype)[label]
    else:
        pixel_weight = weight.to(nll.dtype)[logits.argmax(1)]
    weighted = nll * pixel_weight  # (N, H, W)
    losses = torch.where(valid, weighted, 0.0)
    if only_mean:
        reduction = "mean"
    if only_none:
        reduction = "none"
    if reduction == "none":
        return losses if none_masked else weighted
    if reduction == "sum":
        return losses.sum()
    kept = torch.where(valid, pixel_weight, 0.0)
    if denominator == "all":
        return losses.sum() / pixel_weight.sum()
    if denominator == "count":
        return losses.sum() / valid.sum()
    if denominator == "per_image":
        return (losses.flatten(1).sum(1) / kept.flatten(1).sum(1)).mean()
    return losses.sum() / kept.sum()


def _wrong_loss(**how: Any) -> Callable[..., torch.Tensor | float]:
    def wrong(*args: Any, **kwargs: Any) -> torch.Tensor | float:
        with torch.no_grad():
            return _loss(*args, **kwargs, **how)

    return wrong


_LOSS_MISTAKES = [
    Mistake(
        "reduction='none' keeps a loss at void pixels: they must be 0",
        _wrong_loss(none_masked=False),
        "the per-pixel map has the same masking as the sum: torch.where(valid, loss, 0).",
    ),
    Mistake(
        "the ignore label is written into the code as 255 instead of read from ignore_index",
        _wrong_loss(fixed_ignore=VOID),
        "compare the target with the argument: valid = target != ignore_index; data sets "
        "mark void differently (torch's default is -100).",
    ),
    Mistake(
        "the per-pixel loss map is returned, not reduced to one number",
        _wrong_loss(only_none=True),
        "reduction='mean' and 'sum' return a scalar tensor (shape ()): reduce the (N, H, W) "
        "map; only reduction='none' returns the map itself.",
    ),
    Mistake(
        "the loss is returned as a Python number (loss.item()), not as a tensor",
        _wrong_loss(as_number=True),
        "return the tensor itself: training calls loss.backward(), which a float cannot do; "
        "call .item() only to print or log the value.",
    ),
    Mistake(
        "void pixels are counted: the label 255 is clamped into range(C) and scored as the "
        "last class",
        _wrong_loss(void="clamp"),
        "void pixels have no class; build valid = target != ignore_index and leave them out "
        "of the sum and of the count (give them a legal index for gather, e.g. with "
        "torch.where(valid, target, 0), and then mask their losses).",
    ),
    Mistake(
        "void pixels are counted: they are scored as class 0 and never masked",
        _wrong_loss(void="zero"),
        "replacing 255 by 0 only makes gather legal; the losses of those pixels must still be "
        "masked out (torch.where(valid, loss, 0)) and left out of the count.",
    ),
    Mistake(
        "the mean divides by every pixel, void ones included, not by the labelled pixels",
        _wrong_loss(denominator="all"),
        "the void pixels add nothing to the sum, so they must add nothing to the denominator: "
        "divide by valid.sum() (by the summed weight of the valid pixels when weight is given).",
    ),
    Mistake(
        "the mean is taken per image and then over the batch",
        _wrong_loss(denominator="per_image"),
        "images have different numbers of labelled pixels; torch (and the reference) average "
        "over all labelled pixels of the batch at once: one sum divided by one count.",
    ),
    Mistake(
        "the softmax runs over dim 0, the batch, instead of dim 1, the classes",
        _wrong_loss(dim=0),
        "logits are (N, C, H, W): each pixel's class scores lie along dim=1, so use "
        "logits.log_softmax(dim=1).",
    ),
    Mistake(
        "the softmax runs over the last dim, the width, instead of dim 1, the classes",
        _wrong_loss(dim=-1),
        "logits are (N, C, H, W), not (N, C) as in image classification: normalise each "
        "pixel's scores over dim=1.",
    ),
    Mistake(
        "the minus sign is missing: the loss is the log-probability, not its negative",
        _wrong_loss(sign=1.0),
        "log-probabilities are <= 0; the loss to minimise is -log p(y), which is >= 0.",
    ),
    Mistake(
        "the reduction argument is ignored: the mean is returned for every reduction",
        _wrong_loss(only_mean=True),
        "reduction='sum' returns the plain sum of the (weighted) losses of the labelled pixels, "
        "reduction='none' the (N, H, W) map of them with 0 at void pixels.",
    ),
    Mistake(
        "the class weights are ignored",
        _wrong_loss(weight_by="nothing"),
        "when weight is given, multiply each pixel's loss by weight[target] (the weight of "
        "its true class) and divide the mean by the sum of those weights.",
    ),
    Mistake(
        "the weighted mean divides by the number of labelled pixels instead of the sum of "
        "their weights",
        _wrong_loss(denominator="count"),
        "with weights the mean is sum(w[y] * loss) / sum(w[y]) over the labelled pixels, as in "
        "F.cross_entropy; dividing by the count changes the loss's scale with the class mix.",
    ),
    Mistake(
        "the weights are indexed by the predicted class (argmax of the logits) instead of "
        "the target",
        _wrong_loss(weight_by="prediction"),
        "a pixel is weighted by its true class: weight[target] (with void pixels given a "
        "legal index and masked), not weight[logits.argmax(1)].",
    ),
    Mistake(
        "log(softmax(...)) underflows: a probability below about 1e-45 becomes 0 in float32, "
        "and its log -inf",
        _wrong_loss(log="log_of_softmax"),
        "use logits.log_softmax(dim=1), or subtract the log-sum-exp yourself: "
        "logits - logits.logsumexp(dim=1, keepdim=True); it never forms the tiny probability.",
    ),
]


def _guarded(student: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``student`` on copies, logits requiring grad; fail if it edits target, cuts grad or
    gives NaN.

    A loss that writes into ``target`` (e.g. ``target[target == 255] = 0``) corrupts the
    data set's masks for the next epoch, and a loss cut from the graph trains nothing. The
    reference is never NaN on the cases, so a NaN is explained here, where its likely cause
    is known.
    """

    def guarded(logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        leaf = logits.detach().clone().requires_grad_()
        mine = target.clone()
        loss = student(leaf, mine, **kwargs)
        if not torch.equal(mine, target):
            raise RuntimeError(
                "the check found that your function changed its argument target in place "
                "(e.g. target[target == ignore_index] = 0); in training that would overwrite "
                "the data set's masks: build a new tensor instead, e.g. "
                "torch.where(valid, target, 0)"
            )
        if isinstance(loss, torch.Tensor) and not loss.requires_grad:
            raise RuntimeError(
                "the check found that the returned loss is not connected to logits by "
                "autograd, so loss.backward() could not train the network; compute it with "
                "torch operations on logits, without .item(), .detach(), numpy or "
                "torch.no_grad()"
            )
        if isinstance(loss, torch.Tensor) and bool(torch.isnan(loss.detach()).any()):
            ignore = kwargs.get("ignore_index", VOID)
            all_void = bool((target == ignore).flatten(1).all(1).any())
            cause = (
                "the mean of an image without labelled pixels (this batch has one; average "
                "over all labelled pixels of the batch at once)"
                if all_void
                else "exp() of large logits overflowing to inf / inf (use log_softmax)"
            )
            raise RuntimeError(
                "the check found NaN in your result, where the reference has none: a 0 / 0 "
                f"somewhere, e.g. {cause}"
            )
        return loss

    return guarded


def check_pixel_cross_entropy(student: Callable[..., torch.Tensor]) -> None:
    """Check ``pixel_cross_entropy(logits, target, ignore_index=255, weight=None, reduction=...)``.

    The reference is :func:`fcn_course.losses.pixel_cross_entropy`; the cases have void
    pixels in varying fractions (an image that is all void among others), class weights or
    none, every reduction, logits large enough to break ``log(softmax(...))``, and another
    ignore label. Chapter "Training with a pixel-wise loss".
    """
    __tracebackhide__ = True
    run_checks(
        "pixel_cross_entropy",
        _guarded(student) if callable(student) else student,
        lambda *args, **kwargs: pixel_cross_entropy(*args, **kwargs).detach(),
        _loss_cases(),
        reference_name="fcn_course.losses.pixel_cross_entropy",
        mistakes=_LOSS_MISTAKES,
        general_hint=(
            "per pixel, loss = -weight[y] * log_softmax(logits, dim=1)[y] with y its label; "
            "void pixels (target == ignore_index) add 0; 'mean' divides the sum by the summed "
            "weight of the labelled pixels (their number without weights), 'sum' does not "
            "divide, 'none' returns the (N, H, W) map; the result is a tensor."
        ),
    )


# ----------------------------------------------------------------------------- class weights

#: Pixel counts per class ``(C,)`` and the method (None: the default): few and many classes,
#: odd and even numbers of classes (the median of an even number averages the middle two),
#: absent classes, and counts as large as a real data set's.
_WEIGHT_COUNTS: tuple[tuple[tuple[int, ...], str | None], ...] = (
    ((10, 30, 60), None),
    ((500, 120, 80, 300), "inverse_frequency"),
    ((10, 30, 60), "median_frequency"),
    ((400, 100, 250, 50), "median_frequency"),
    ((700, 0, 200, 100), "inverse_frequency"),
    ((900, 0, 40, 60), "median_frequency"),
    ((5, 0, 0, 20, 75, 300), "median_frequency"),
    ((12_000_000, 310_000, 95_000, 1_400_000, 45_000), "median_frequency"),
    ((12_000_000, 310_000, 95_000, 1_400_000, 45_000), "inverse_frequency"),
    ((42,), "median_frequency"),
)


def _weight_cases() -> list[Case]:
    cases = []
    for counts, method in _WEIGHT_COUNTS:
        kwargs = {} if method is None else {"method": method}
        cases.append(Case(args=(torch.tensor(counts),), kwargs=kwargs))
    return cases


def _weights(
    counts: torch.Tensor,
    method: str = "inverse_frequency",
    *,
    k_all: bool = False,
    median_all: bool = False,
    lower_median: bool = False,
    absent: str = "zero",
    normalise: str = "k",
    use_counts: bool = False,
) -> torch.Tensor:
    """The class weights, right by default, and with one typical mistake per keyword.

    ``k_all``: K counts every class, absent ones too. ``median_all``: the median runs over
    every class's frequency, zeros too. ``lower_median``: ``torch.median``, the lower of
    the two middle values. ``absent``: what an absent class gets, ``"zero"`` or ``"inf"``
    (an unguarded division). ``normalise`` (inverse frequency): ``"k"`` (1 / (K freq)),
    ``"none"`` (1 / freq) or ``"sum"`` (weights summing to 1). ``use_counts``: counts
    where frequencies belong.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    freq = counts if use_counts else counts / counts.sum()
    present = counts > 0
    with torch.no_grad():
        inverse = 1.0 / freq  # inf for absent classes
        if method == "inverse_frequency":
            k = counts.numel() if k_all else int(present.sum())
            if normalise == "k":
                weights = inverse / k
            elif normalise == "none":
                weights = inverse
            else:
                weights = inverse / inverse[present].sum()
        else:
            pool = freq if median_all else freq[present]
            median = pool.median() if lower_median else pool.quantile(0.5)
            weights = median * inverse
        if absent == "zero":
            weights = torch.where(present, weights, 0.0)
    return weights.float()


def _wrong_weights(**how: Any) -> Callable[..., torch.Tensor]:
    return functools.partial(_weights, **how)


_WEIGHT_MISTAKES = [
    Mistake(
        "inverse frequency without the factor 1 / K: w = 1 / freq",
        _wrong_weights(normalise="none"),
        "divide by K, the number of classes that occur: w_c = 1 / (K * freq_c), so that a "
        "pixel's expected weight is 1 and the loss keeps its scale.",
    ),
    Mistake(
        "the inverse frequencies are normalised to sum to 1 instead of divided by K",
        _wrong_weights(normalise="sum"),
        "w_c = 1 / (K * freq_c): weights whose frequency-weighted mean is 1, not weights "
        "that sum to 1.",
    ),
    Mistake(
        "the weights are computed from the counts, not from the frequencies",
        _wrong_weights(use_counts=True),
        "first turn counts into frequencies: freq = counts / counts.sum().",
    ),
    Mistake(
        "the median is torch.median, which returns the lower of the two middle values",
        _wrong_weights(lower_median=True),
        "for an even number of classes the median averages the two middle frequencies (as "
        "numpy.median does): use freq.quantile(0.5), or sort and average them.",
    ),
    Mistake(
        "K counts every class, also the ones with no pixels",
        _wrong_weights(k_all=True),
        "K is the number of classes that occur: (counts > 0).sum(); an absent class takes no "
        "part in balancing.",
    ),
    Mistake(
        "the median runs over every class's frequency, the zeros of absent classes included",
        _wrong_weights(median_all=True),
        "take the median over the classes that occur only: freq[counts > 0].",
    ),
    Mistake(
        "an absent class gets an infinite weight (a division by its zero frequency)",
        _wrong_weights(absent="inf"),
        "give classes with no pixels the weight 0: torch.where(counts > 0, w, 0); an infinite "
        "weight would make the loss infinite.",
    ),
]


def check_class_weights(student: Callable[..., torch.Tensor]) -> None:
    """Check ``class_weights_from_counts(counts, method="inverse_frequency")`` on ``(C,)`` counts.

    The reference is :func:`fcn_course.losses.class_weights_from_counts` with
    ``method`` ``"inverse_frequency"`` or ``"median_frequency"``. Chapter "Training with a
    pixel-wise loss".
    """
    __tracebackhide__ = True
    run_checks(
        "class_weights_from_counts",
        student,
        lambda counts, **kwargs: class_weights_from_counts(counts, **kwargs),
        _weight_cases(),
        reference_name="fcn_course.losses.class_weights_from_counts",
        mistakes=_WEIGHT_MISTAKES,
        general_hint=(
            "freq = counts / counts.sum(); over the K classes with pixels, 'inverse_frequency' "
            "gives 1 / (K * freq) and 'median_frequency' gives median(freq) / freq; classes "
            "with no pixels get 0; return a (C,) tensor."
        ),
    )
