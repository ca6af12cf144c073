"""Checkers for the exercise on the confusion matrix and the four metrics (chapter "Evaluation").

The student writes the confusion matrix of predicted labels against ground-truth labels, and
the FCN paper's four metrics of such a matrix. The reference for both is
:class:`fcn_course.metrics.ConfusionMatrix`: its ``matrix`` after ``update(pred, target)``
(rows are the ground truth, columns the prediction, so that ``matrix[i, j] = n_ij`` counts the
pixels of class ``i`` predicted as class ``j``; pixels labelled ``ignore_index`` are not
counted) and its ``compute()`` (a class absent from both ground truth and prediction has an
undefined, NaN, IU and is left out of the means).

The metrics are compared one by one, NaN equal to NaN; a typical mistake is named when the
metrics it changes on a case have the values it gives, whatever the others are, so that a
student learns of one mistake even while another one is still in the code.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fcn_course.checks._core import Case, Mistake, run_checks
from fcn_course.metrics import ConfusionMatrix

__all__ = ["check_confusion_matrix", "check_segmentation_metrics"]

VOID = 255

# ----------------------------------------------------------------------------- matrix cases


@dataclass(frozen=True)
class _MatrixCase(Case):
    """A case described by its shapes, dtypes, void pixels and classes, not tensor values."""

    def describe(self, func_name: str) -> str:
        pred, target, num_classes = self.args
        ignore = self.kwargs.get("ignore_index", VOID)
        keyword = f", ignore_index={ignore}" if "ignore_index" in self.kwargs else ""
        void = target == ignore
        in_truth, in_pred = set(target[~void].tolist()), set(pred[~void].tolist())
        absent = [
            f"class {_listed(classes)} {what}"
            for classes, what in (
                ([c for c in range(num_classes) if c not in in_truth | in_pred],
                 "in neither ground truth nor prediction"),
                (sorted(in_pred - in_truth), "only in the prediction"),
                (sorted(in_truth - in_pred), "never predicted"),
            )
            if classes
        ]
        classes = "; ".join(absent) if absent else "every class in ground truth and prediction"
        per_image = ""
        if target.shape[0] > 1:
            per_image = f" (per image: {_listed(void.flatten(1).sum(1).tolist())})"
        dtypes = "" if target.dtype == pred.dtype else (
            f"; target is {target.dtype}, pred {pred.dtype}"
        )
        return (
            f"{func_name}(pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
            f"{num_classes}{keyword}), where {int(void.sum())} of {target.numel()} target pixels "
            f"are void (= {ignore}){per_image}; {classes}{dtypes}"
        )


def _matrix_cases(seed: int = 0) -> list[_MatrixCase]:
    """Fresh tensors for every check, so that an answer that edits them harms nothing.

    In order: a hand-sized 2x3 example, a batch of non-square images, a last class that
    occurs nowhere, a class that is only predicted, an image that is void everywhere, label 0
    as the ignore label, a PASCAL-VOC-like batch (21 classes, uint8 masks as read from PNG
    files, int64 predictions as from argmax) and a larger batch of mostly right predictions.
    """
    gen = torch.Generator().manual_seed(seed)

    def labels(shape: tuple[int, ...], high: int) -> torch.Tensor:
        return torch.randint(0, high, shape, generator=gen)

    def with_void(target: torch.Tensor, fraction: float, ignore: int = VOID) -> torch.Tensor:
        target[torch.rand(target.shape, generator=gen) < fraction] = ignore
        return target

    cases = [
        _MatrixCase(args=(
            torch.tensor([[[0, 1, 1], [2, 2, 0]]]), torch.tensor([[[0, 0, 1], [1, 2, VOID]]]), 3
        )),
        _MatrixCase(args=(labels((2, 5, 7), 4), with_void(labels((2, 5, 7), 4), 0.15), 4)),
        _MatrixCase(args=(labels((3, 4, 6), 4), with_void(labels((3, 4, 6), 4), 0.1), 5)),
        _MatrixCase(args=(labels((2, 6, 5), 3), with_void(2 * labels((2, 6, 5), 2), 0.2), 3)),
    ]
    target = with_void(labels((2, 3, 8), 4), 0.1)
    target[1] = VOID
    cases.append(_MatrixCase(args=(labels((2, 3, 8), 4), target, 4)))
    cases.append(_MatrixCase(
        args=(labels((2, 4, 5), 4), labels((2, 4, 5), 4), 4), kwargs={"ignore_index": 0}
    ))
    target = with_void(labels((2, 8, 8), 21), 0.2).to(torch.uint8)
    cases.append(_MatrixCase(args=(labels((2, 8, 8), 21), target, 21)))
    target = labels((4, 4, 4), 6).repeat_interleave(4, 1).repeat_interleave(4, 2)  # 4x4 blocks
    pred = torch.where(torch.rand(4, 16, 16, generator=gen) < 0.25, labels((4, 16, 16), 6), target)
    cases.append(_MatrixCase(args=(pred, with_void(target, 0.05), 6)))
    return cases


def _reference_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = VOID
) -> torch.Tensor:
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(pred, target)
    return cm.matrix


# ----------------------------------------------------------------------------- matrix mistakes


def _matrix(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int = VOID,
    *,
    void: str = "mask",
    fixed_ignore: int | None = None,
    size_from_labels: bool = False,
    in_target_dtype: bool = False,
    transposed: bool = False,
) -> torch.Tensor:
    """The confusion matrix, right by default, and with one typical mistake per keyword.

    ``void``: ``"mask"``, ``"clamp"`` (void labels clamped into the last class) or ``"zero"``
    (void read as class 0). ``fixed_ignore``: an ignore label written into the code.
    ``size_from_labels``: the matrix sized by the largest label present, not ``num_classes``.
    ``in_target_dtype``: the flat index computed in the target's dtype (uint8 wraps at 256).
    ``transposed``: rows are the prediction.
    """
    ignore = ignore_index if fixed_ignore is None else fixed_ignore
    truth, guess = target.flatten(), pred.flatten()
    if void == "mask":
        keep = truth != ignore
        truth, guess = truth[keep], guess[keep]
    elif void == "clamp":
        truth = truth.clamp(max=num_classes - 1)
    else:
        truth = torch.where(truth == ignore, 0, truth)
    n = num_classes
    if size_from_labels:
        n = int(max(truth.max(), guess.max())) + 1 if truth.numel() else 0
    if not in_target_dtype:
        truth, guess = truth.long(), guess.long()
    rows, columns = (guess, truth) if transposed else (truth, guess)
    flat = n * rows + columns  # uint8 * int stays uint8 and wraps: 21 * 13 = 273 -> 17
    return torch.bincount(flat.long(), minlength=n * n).reshape(n, n)


def _wrong_matrix(**how: Any) -> Callable[..., torch.Tensor]:
    def wrong(*args: Any, **kwargs: Any) -> torch.Tensor:
        return _matrix(*args, **kwargs, **how)

    return wrong


_MATRIX_MISTAKES = [
    Mistake(
        "the matrix is transposed: its rows are the prediction, its columns the ground truth",
        _wrong_matrix(transposed=True),
        "the FCN paper's n_ij counts the pixels of class i predicted as class j: row = ground "
        "truth, column = prediction, so the flat index is num_classes * target + pred.",
    ),
    Mistake(
        "the ignore label is written into the code as 255 instead of read from ignore_index",
        _wrong_matrix(fixed_ignore=VOID),
        "compare the target with the argument: valid = target != ignore_index; data sets mark "
        "void differently (some with 0, torch's losses default to -100).",
    ),
    Mistake(
        "void pixels are counted: the label 255 is clamped into the last class",
        _wrong_matrix(void="clamp"),
        "void pixels have no class; keep only the labelled ones, valid = target != "
        "ignore_index, and count target[valid] against pred[valid].",
    ),
    Mistake(
        "void pixels are counted: they are read as class 0 and never masked",
        _wrong_matrix(void="zero"),
        "replacing the ignore label by 0 does not remove the pixels; select the labelled ones "
        "with valid = target != ignore_index and count only target[valid], pred[valid].",
    ),
    Mistake(
        "the matrix's size comes from the labels present (largest label + 1), not from "
        "num_classes",
        _wrong_matrix(size_from_labels=True),
        "a class may be absent from a batch, yet it keeps its row and column: the matrix is "
        "always (num_classes, num_classes); torch.bincount(..., minlength=num_classes ** 2).",
    ),
    Mistake(
        "the flat index num_classes * target + pred overflows: it is computed in the uint8 "
        "of the mask, which wraps at 256",
        _wrong_matrix(in_target_dtype=True),
        "masks read from PNG files are uint8 and 21 * 13 = 273 does not fit; convert first: "
        "num_classes * target[valid].long() + pred[valid].long().",
    ),
]

_RESHAPE_ERRORS = (
    re.compile(r"shape '\[(\d+), (\d+)\]' is invalid for input of size (\d+)"),
    re.compile(r"cannot reshape array of size (\d+) into shape \((\d+), ?(\d+)\)"),
)


def _explain_reshape_error(err: Exception) -> str:
    """A diagnosis for a reshape to the matrix's shape that failed, or ``""``."""
    for number, pattern in enumerate(_RESHAPE_ERRORS):
        found = pattern.search(str(err))
        if found is None:
            continue
        values = [int(v) for v in found.groups()]
        size, rows, columns = (values[2], values[0], values[1]) if number == 0 else values
        if size < rows * columns:
            return (
                f"the check's diagnosis: {size} counts cannot fill {rows} x {columns} cells. "
                "torch.bincount (and numpy.bincount) count only up to the largest index "
                "present, so when the last cells of the matrix are empty (e.g. a class absent "
                "from the batch) there are fewer counts: pass minlength=num_classes ** 2"
            )
        return (
            f"the check's diagnosis: {size} counts are more than the {rows} x {columns} cells, "
            "so some flat index is num_classes ** 2 or more: a label outside range(num_classes) "
            "was counted; leave out the void pixels (target == ignore_index) before counting"
        )
    return ""


def _guarded_matrix(student: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``student`` on copies; explain a failed reshape; fail on edited inputs or a non-int64
    matrix of the right shape (the comparison itself reads values, not dtypes)."""

    def guarded(pred: torch.Tensor, target: torch.Tensor, num_classes: int, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        mine_pred, mine_target = pred.clone(), target.clone()
        try:
            matrix = student(mine_pred, mine_target, num_classes, **kwargs)
        except (RuntimeError, ValueError) as err:
            explanation = _explain_reshape_error(err)
            if explanation:
                raise type(err)(f"{err}\n  {explanation}") from err
            raise
        for name, mine, theirs in (("pred", mine_pred, pred), ("target", mine_target, target)):
            if not torch.equal(mine, theirs):
                raise RuntimeError(
                    f"the check found that your function changed its argument {name} in place "
                    f"(e.g. {name}[{name} == ignore_index] = 0); in an evaluation loop that "
                    "would overwrite the data set's masks or the model's predictions: build "
                    "new tensors instead, e.g. with a boolean mask target[valid]"
                )
        if (
            isinstance(matrix, torch.Tensor)
            and tuple(matrix.shape) == (num_classes, num_classes)
            and matrix.dtype != torch.int64
        ):
            raise TypeError(
                f"the check found that your function returned a {matrix.dtype} tensor; a "
                "confusion matrix holds pixel counts, which must stay exact over a whole data "
                "set (float32 counts exactly only up to 2 ** 24, int32 up to 2 ** 31 - 1): "
                "return an int64 tensor (torch.bincount gives one; or call .long())"
            )
        return matrix

    return guarded


def check_confusion_matrix(student: Callable[..., torch.Tensor]) -> None:
    """Check ``confusion_matrix(pred, target, num_classes, ignore_index=255)``.

    The answer must be the int64 ``(num_classes, num_classes)`` matrix of
    :class:`fcn_course.metrics.ConfusionMatrix` after ``update(pred, target)``: rows = ground
    truth, columns = prediction, void pixels not counted. The cases have void pixels, batches,
    non-square images, a class that occurs nowhere, an all-void image, another ignore label
    and uint8 masks. Chapter "Evaluation".
    """
    __tracebackhide__ = True
    run_checks(
        "confusion_matrix",
        _guarded_matrix(student) if callable(student) else student,
        _reference_matrix,
        _matrix_cases(),
        reference_name="fcn_course.metrics.ConfusionMatrix",
        mistakes=_MATRIX_MISTAKES,
        general_hint=(
            "keep the labelled pixels, valid = target != ignore_index; cell (i, j) counts the "
            "pixels with target i and prediction j: torch.bincount(num_classes * "
            "target[valid].long() + pred[valid].long(), minlength=num_classes ** 2)"
            ".reshape(num_classes, num_classes), an int64 tensor."
        ),
        atol=0,
        rtol=0,
    )


# ----------------------------------------------------------------------------- metric values

#: The four metrics, in the paper's order; ``"iou"``, the per-class IU, comes with them.
METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou")
_KEYS = (*METRICS, "iou")


def _same(a: float | tuple[float, ...], b: float | tuple[float, ...]) -> bool:
    """Whether two metric values agree: NaN equals NaN, numbers to 1e-5 relative."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        if not (isinstance(a, tuple) and isinstance(b, tuple)) or len(a) != len(b):
            return False
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)


class _Scores:
    """Metric values to compare, by name; a typical mistake holds only those it changes.

    Two ``_Scores`` are equal when they agree on every name both hold; a mistake that changes
    nothing on a case is ``never`` equal to anything.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, values: Mapping[str, float | tuple[float, ...]], *, never: bool = False):
        self.values = dict(values)
        self.never = never

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Scores):
            return NotImplemented
        if self.never or other.never:
            return False
        shared = [k for k in _KEYS if k in self.values and k in other.values]
        return all(_same(self.values[k], other.values[k]) for k in shared)

    def __repr__(self) -> str:
        def show(value: float | tuple[float, ...]) -> str:
            if isinstance(value, tuple):
                return "[" + ", ".join(f"{v:.6g}" for v in value) + "]"
            return f"{value:.6g}"

        return "{" + ", ".join(f"{k}: {show(self.values[k])}" for k in _KEYS
                               if k in self.values) + "}"


def _reference_values(matrix: torch.Tensor) -> dict[str, float | tuple[float, ...]]:
    cm = ConfusionMatrix(matrix.shape[0])
    cm.matrix = matrix.clone().long()
    scores = cm.compute()
    return {k: tuple(scores[k]) if k == "iou" else scores[k] for k in _KEYS}


def _reference_scores(matrix: torch.Tensor) -> _Scores:
    return _Scores(_reference_values(matrix))


# ----------------------------------------------------------------------------- metric cases


@dataclass(frozen=True)
class _MetricsCase(Case):
    """A case that shows its matrix and names its absent classes."""

    def describe(self, func_name: str) -> str:
        (matrix,) = self.args
        truth, predicted = matrix.sum(1), matrix.sum(0)
        notes = []
        neither = [i for i in range(len(truth)) if truth[i] == 0 and predicted[i] == 0]
        only_predicted = [i for i in range(len(truth)) if truth[i] == 0 and predicted[i] > 0]
        never_predicted = [i for i in range(len(truth)) if truth[i] > 0 and predicted[i] == 0]
        if neither:
            notes.append(f"class {_listed(neither)} in neither ground truth nor prediction")
        if only_predicted:
            notes.append(f"class {_listed(only_predicted)} only in the prediction")
        if never_predicted:
            notes.append(f"class {_listed(never_predicted)} never predicted")
        where = f", with {'; '.join(notes)}" if notes else ""
        return (
            f"{func_name}(matrix) for matrix = {matrix.tolist()} (rows: ground truth, "
            f"columns: prediction){where}"
        )


def _listed(classes: list[int]) -> str:
    return ", ".join(str(c) for c in classes)


#: Confusion matrices, rows = ground truth: a hand-sized example, an imbalanced one, absent
#: classes of every kind (also the first class), a perfect prediction, two classes, and the
#: counts of a whole data set.
_MATRICES: tuple[list[list[int]], ...] = (
    [[1, 1, 0], [0, 1, 1], [0, 0, 1]],
    [[520, 14, 3, 31], [12, 86, 4, 0], [41, 7, 23, 2], [9, 0, 1, 60]],
    [[40, 5, 0, 3], [2, 30, 0, 6], [0, 0, 0, 0], [7, 1, 0, 22]],
    [[30, 4, 6], [3, 12, 2], [0, 0, 0]],
    [[40, 3, 0], [2, 25, 0], [6, 4, 0]],
    [[60, 0, 5, 2, 8], [0, 0, 0, 0, 0], [4, 0, 25, 1, 3], [6, 0, 2, 18, 1], [0, 0, 0, 0, 0]],
    [[50, 0, 0], [0, 0, 0], [0, 0, 30]],
    [[9000, 400], [250, 350]],
    [[0, 0, 0, 0], [0, 14, 2, 1], [0, 3, 9, 0], [0, 0, 4, 7]],
    [
        [181_204_775, 2_210_412, 1_431_067, 903_318, 1_880_524],
        [3_102_556, 21_785_340, 412_027, 88_121, 230_553],
        [2_480_339, 530_112, 9_420_871, 47_005, 61_980],
        [1_702_448, 96_553, 31_007, 3_185_602, 12_445],
        [2_911_760, 301_449, 75_018, 9_993, 4_870_114],
    ],
)


def _metrics_cases() -> list[_MetricsCase]:
    return [_MetricsCase(args=(torch.tensor(m, dtype=torch.int64),)) for m in _MATRICES]


# ----------------------------------------------------------------------------- metric mistakes


def _metrics(
    matrix: torch.Tensor,
    *,
    rows: str = "truth",
    iou: str = "intersection_over_union",
    absent_iou: str = "nan",
    mean_iou: str = "defined",
    fw_weight: str = "truth",
    fw_sum: str = "nansum",
    mean_accuracy: str = "defined",
) -> dict[str, float | tuple[float, ...]]:
    """The metrics, right by default, and with one typical mistake per keyword.

    ``rows``: what the rows are read as (``"prediction"``: the matrix read transposed).
    ``iou``: ``"intersection_over_union"``, ``"precision"``, ``"recall"`` or
    ``"union_plus_hits"`` (``t_i + sum_j n_ji``, the hits counted twice). ``absent_iou``:
    ``"nan"`` or ``"zero"`` for a class in neither. ``mean_iou``: ``"defined"`` (classes with
    a defined IU), ``"mean"`` (all, NaN included), ``"zeros"`` (all, NaN read as 0) or
    ``"truth_only"`` (classes of the ground truth only). ``fw_weight``: ``"truth"`` or
    ``"prediction"``. ``fw_sum``: ``"nansum"`` or ``"sum"`` (NaN of an absent class kept).
    ``mean_accuracy``: ``"defined"``, ``"mean"``, ``"zeros"`` or ``"pixel"``.
    """
    n = matrix.double()
    if rows == "prediction":
        n = n.T
    hits = n.diagonal()  # n_ii, (C,)
    truth = n.sum(1)  # t_i
    predicted = n.sum(0)  # sum_j n_ji
    total = truth.sum()
    denominator = {
        "intersection_over_union": truth + predicted - hits,
        "precision": predicted,
        "recall": truth,
        "union_plus_hits": truth + predicted,
    }[iou]
    iu = hits / denominator  # 0 / 0 = NaN
    if absent_iou == "zero":
        iu = iu.nan_to_num(nan=0.0)
    mean_iu = {
        "defined": lambda: iu.nanmean(),
        "mean": lambda: iu.mean(),
        "zeros": lambda: iu.nan_to_num(nan=0.0).mean(),
        "truth_only": lambda: iu[truth > 0].nanmean(),
    }[mean_iou]()
    weight = truth if fw_weight == "truth" else predicted
    weighted = weight * iu
    fw = (weighted.nansum() if fw_sum == "nansum" else weighted.sum()) / total
    accuracy = hits / truth
    mean_acc = {
        "defined": lambda: accuracy.nanmean(),
        "mean": lambda: accuracy.mean(),
        "zeros": lambda: accuracy.nan_to_num(nan=0.0).mean(),
        "pixel": lambda: hits.sum() / total,
    }[mean_accuracy]()
    return {
        "pixel_accuracy": float(hits.sum() / total),
        "mean_accuracy": float(mean_acc),
        "mean_iou": float(mean_iu),
        "fw_iou": float(fw),
        "iou": tuple(iu.tolist()),
    }


def _wrong_metrics(fields: tuple[str, ...], **how: str) -> Callable[[torch.Tensor], _Scores]:
    """A mistake's values of ``fields``, kept where they differ from the reference's."""

    def wrong(matrix: torch.Tensor) -> _Scores:
        right = _reference_values(matrix)
        values = _metrics(matrix, **how)
        changed = {k: values[k] for k in fields if not _same(values[k], right[k])}
        return _Scores(changed, never=not changed)

    return wrong


_METRICS_MISTAKES = [
    Mistake(
        "the matrix is read transposed: its rows taken as the prediction, so t_i and the "
        "accuracies come from the columns",
        _wrong_metrics(("mean_accuracy", "fw_iou"), rows="prediction"),
        "rows are the ground truth: t_i = matrix.sum(1) (a row's sum) is the number of pixels "
        "of class i, matrix.sum(0) the number of pixels predicted as i.",
    ),
    Mistake(
        "IoU computed as TP / (TP + FP), the precision n_ii / sum_j n_ji",
        _wrong_metrics(("iou",), iou="precision"),
        "the union of ground truth and prediction holds the hits, the misses and the false "
        "alarms: IoU_i = n_ii / (t_i + sum_j n_ji - n_ii).",
    ),
    Mistake(
        "IoU computed as TP / (TP + FN), the recall n_ii / t_i (the per-class accuracy)",
        _wrong_metrics(("iou",), iou="recall"),
        "the pixels wrongly predicted as class i count against it too: IoU_i = n_ii / "
        "(t_i + sum_j n_ji - n_ii), with sum_j n_ji = matrix.sum(0)[i].",
    ),
    Mistake(
        "the union counts the hits twice: t_i + sum_j n_ji without - n_ii",
        _wrong_metrics(("iou",), iou="union_plus_hits"),
        "the pixels of class i predicted as i are in the ground truth and in the prediction; "
        "count them once: union = t_i + sum_j n_ji - n_ii.",
    ),
    Mistake(
        "mean IU averages over every class: the 0 / 0 = NaN of a class absent from both "
        "ground truth and prediction makes it NaN",
        _wrong_metrics(("mean_iou",), mean_iou="mean"),
        "such a class has no IU at all; leave it out of the mean: iou.nanmean(), or average "
        "over the classes with t_i + sum_j n_ji > 0.",
    ),
    Mistake(
        "mean IU counts a class absent from both ground truth and prediction as IoU 0",
        _wrong_metrics(("mean_iou",), mean_iou="zeros"),
        "nothing was there and nothing was predicted: that is no error, so it must not pull "
        "the mean down; n_cl counts only the classes with t_i + sum_j n_ji > 0 (iou.nanmean()).",
    ),
    Mistake(
        "mean IU leaves out the classes that are predicted but absent from the ground truth",
        _wrong_metrics(("mean_iou",), mean_iou="truth_only"),
        "a class predicted where it does not occur has IoU 0 / (its false alarms) = 0, a real "
        "error that stays in the mean; only classes in neither are left out.",
    ),
    Mistake(
        "the IoU of a class absent from both ground truth and prediction is 0 instead of "
        "NaN (undefined)",
        _wrong_metrics(("iou",), absent_iou="zero"),
        "0 / 0 has no value: keep it NaN (hits / union in floating point gives NaN), so that "
        "the means can leave the class out.",
    ),
    Mistake(
        "frequency-weighted IU is weighted by the predicted frequency sum_j n_ji instead of "
        "the ground-truth frequency t_i",
        _wrong_metrics(("fw_iou",), fw_weight="prediction"),
        "weight each class by how often it occurs in the ground truth: "
        "fw IU = sum_i t_i IoU_i / sum_k t_k, t_i = matrix.sum(1).",
    ),
    Mistake(
        "frequency-weighted IU is NaN: t_i * IoU_i of a class absent from both is 0 * NaN",
        _wrong_metrics(("fw_iou",), fw_sum="sum"),
        "a class with t_i = 0 has no weight; leave its NaN out of the sum, e.g. with "
        "(t * iou).nansum(), or torch.where(t > 0, t * iou, 0).",
    ),
    Mistake(
        "mean accuracy is the pixel accuracy",
        _wrong_metrics(("mean_accuracy",), mean_accuracy="pixel"),
        "mean accuracy averages the accuracy of each class, n_ii / t_i, so that a rare class "
        "counts as much as the background; pixel accuracy pools all pixels.",
    ),
    Mistake(
        "mean accuracy averages over every class: n_ii / t_i of a class without ground-truth "
        "pixels is 0 / 0 = NaN and makes it NaN",
        _wrong_metrics(("mean_accuracy",), mean_accuracy="mean"),
        "a class with t_i = 0 has no accuracy; leave it out: accuracy.nanmean().",
    ),
    Mistake(
        "mean accuracy counts a class without ground-truth pixels as accuracy 0",
        _wrong_metrics(("mean_accuracy",), mean_accuracy="zeros"),
        "n_ii / t_i is undefined when t_i = 0 (the false alarms of a class only predicted "
        "already lower the accuracy of the classes they took pixels from): leave it out.",
    ),
]

# ----------------------------------------------------------------------------- reading answers


def _read_number(key: str, value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.item())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else (
        f"{type(value).__name__} {value!r}"[:80]
    )
    raise TypeError(
        f"the check found that your dict's {key!r} is {shown}; expected one number "
        "(a float, or a tensor holding one value)"
    )


def _read_iou(value: Any, num_classes: int) -> tuple[float, ...]:
    values: torch.Tensor | None = None
    if isinstance(value, torch.Tensor):
        values = value.detach().double().cpu()
    elif isinstance(value, np.ndarray | list | tuple):
        try:
            values = torch.from_numpy(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            values = None
    if values is not None and values.ndim == 1 and values.numel() == num_classes:
        return tuple(values.tolist())
    shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else (
        f"{type(value).__name__} {value!r}"[:80]
    )
    raise TypeError(
        f"the check found that your dict's 'iou' is {shown}; expected the IoU of each class: "
        f"{num_classes} numbers in a 1-d tensor (NaN for a class in neither ground truth nor "
        "prediction)"
    )


def _read_scores(student: Callable[..., Any]) -> Callable[[torch.Tensor], _Scores]:
    """Call ``student`` on a copy of the matrix and read its dict of metrics into ``_Scores``."""

    def read(matrix: torch.Tensor) -> _Scores:
        __tracebackhide__ = True
        mine = matrix.clone()
        result = student(mine)
        if not torch.equal(mine, matrix):
            raise RuntimeError(
                "the check found that your function changed its argument matrix in place; "
                "an evaluation would then report the metrics of a different matrix: compute "
                "new tensors instead (e.g. n = matrix.double())"
            )
        expected = ", ".join(repr(k) for k in _KEYS)
        if not isinstance(result, Mapping):
            raise TypeError(
                f"the check found that your function returned {type(result).__name__}; "
                f"expected a dict with the keys {expected}"
            )
        missing = [k for k in _KEYS if k not in result]
        if missing:
            have = ", ".join(repr(k) for k in result) or "none"
            raise KeyError(
                f"the check found that your dict lacks {', '.join(repr(k) for k in missing)} "
                f"(it has {have}); return all of {expected}"
            )
        values: dict[str, float | tuple[float, ...]] = {
            k: _read_number(k, result[k]) for k in METRICS
        }
        values["iou"] = _read_iou(result["iou"], matrix.shape[0])
        return _Scores(values)

    return read


def check_segmentation_metrics(student: Callable[..., Mapping[str, Any]]) -> None:
    """Check ``segmentation_metrics(matrix)``: the FCN paper's four metrics and per-class IoU.

    The answer is a dict with ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou``
    (numbers) and ``iou`` (one value per class, NaN for a class in neither ground truth nor
    prediction), equal to :meth:`fcn_course.metrics.ConfusionMatrix.compute` on the same
    matrix. The cases include classes absent from both, classes only predicted and classes
    never predicted. Chapter "Evaluation".
    """
    __tracebackhide__ = True
    run_checks(
        "segmentation_metrics",
        _read_scores(student) if callable(student) else student,
        _reference_scores,
        _metrics_cases(),
        reference_name="fcn_course.metrics.ConfusionMatrix.compute",
        mistakes=_METRICS_MISTAKES,
        general_hint=(
            "with n = matrix.double(): n_ii = n.diagonal(), t_i = n.sum(1), sum_j n_ji = "
            "n.sum(0); IoU_i = n_ii / (t_i + sum_j n_ji - n_ii), NaN for a class in neither; "
            "mean accuracy and mean IU average the per-class values that are defined "
            "(nanmean); fw IU = sum_i t_i IoU_i / sum_k t_k over the classes with t_i > 0."
        ),
    )
