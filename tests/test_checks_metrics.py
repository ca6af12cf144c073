"""The metric checkers have teeth: right answers pass, typical wrong answers are named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fcn_course.checks import CheckFailure, check_confusion_matrix, check_segmentation_metrics
from fcn_course.checks.metrics import _matrix_cases, _metrics_cases
from fcn_course.metrics import ConfusionMatrix

# ---- confusion matrices a student might write (independent of the checker's own mistakes)


def matrix_add_at(pred, target, num_classes, ignore_index=255):
    """numpy's unbuffered add at (row, column) = (truth, prediction) of every labelled pixel."""
    t, p = target.numpy().ravel().astype(np.int64), pred.numpy().ravel().astype(np.int64)
    keep = t != ignore_index
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (t[keep], p[keep]), 1)
    return torch.from_numpy(counts)


def matrix_one_hot(pred, target, num_classes, ignore_index=255):
    """One-hot rows of the truth times one-hot rows of the prediction: sum_pixels e_t e_p^T."""
    valid = target != ignore_index
    truth = F.one_hot(target[valid].long(), num_classes)  # (P, C)
    guess = F.one_hot(pred[valid].long(), num_classes)  # (P, C)
    return truth.T @ guess


def _matrix_student(how):
    """A student's matrix with one mistake, written with numpy."""

    def matrix(pred, target, num_classes, ignore_index=255):
        t = target.numpy().ravel().astype(np.int64)
        p = pred.numpy().ravel().astype(np.int64)
        n = num_classes
        if how == "clamped":  # 255 squeezed into the last class, every pixel counted
            t = np.minimum(t, n - 1)
        elif how == "zero":  # void read as class 0, never dropped
            t = np.where(t == ignore_index, 0, t)
        else:
            keep = t != (255 if how == "fixed_255" else ignore_index)
            t, p = t[keep], p[keep]
        if how == "sized_by_labels":  # as sklearn's confusion_matrix without labels=
            n = int(max(t.max(), p.max())) + 1
        rows, columns = (p, t) if how == "transposed" else (t, p)
        counts = np.zeros((n, n), dtype=np.int64)
        for r, c in zip(rows, columns, strict=True):
            counts[r, c] += 1
        return torch.from_numpy(counts)

    return matrix


def matrix_uint8_overflow(pred, target, num_classes, ignore_index=255):
    valid = target != ignore_index
    flat = num_classes * target[valid] + pred[valid]  # a uint8 target wraps before the sum
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def matrix_without_minlength(pred, target, num_classes, ignore_index=255):
    valid = target != ignore_index
    flat = num_classes * target[valid].long() + pred[valid].long()
    return torch.bincount(flat).reshape(num_classes, num_classes)


def matrix_numpy_without_minlength(pred, target, num_classes, ignore_index=255):
    t, p = target.numpy().astype(np.int64), pred.numpy().astype(np.int64)
    keep = t != ignore_index
    counts = np.bincount(num_classes * t[keep] + p[keep])
    return torch.from_numpy(counts.reshape(num_classes, num_classes))


def matrix_void_unmasked(pred, target, num_classes, ignore_index=255):
    flat = (num_classes * target.long() + pred.long()).flatten()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def matrix_float_loop(pred, target, num_classes, ignore_index=255):
    counts = torch.zeros(num_classes, num_classes)  # float32
    for t, p in zip(target.flatten().tolist(), pred.flatten().tolist(), strict=True):
        if t != ignore_index:
            counts[t, p] += 1
    return counts


def matrix_edits_target(pred, target, num_classes, ignore_index=255):
    void = target == ignore_index
    target[void] = 0  # writes into the caller's mask
    pred = pred.masked_fill(void, num_classes)  # and sends those pixels to a dropped column
    extended = matrix_add_at(pred, target, num_classes + 1, ignore_index)
    return extended[:num_classes, :num_classes]


# ---- metrics a student might write


def metrics_loops(matrix):
    """The paper's formulas with plain loops; undefined classes listed out, never NaN-averaged."""
    m = matrix.tolist()
    c = len(m)
    truth = [sum(row) for row in m]
    predicted = [sum(m[j][i] for j in range(c)) for i in range(c)]
    total = sum(truth)
    iou = [
        m[i][i] / (truth[i] + predicted[i] - m[i][i]) if truth[i] + predicted[i] else math.nan
        for i in range(c)
    ]
    defined = [v for v in iou if not math.isnan(v)]
    accuracies = [m[i][i] / truth[i] for i in range(c) if truth[i]]
    return {
        "pixel_accuracy": sum(m[i][i] for i in range(c)) / total,
        "mean_accuracy": sum(accuracies) / len(accuracies),
        "mean_iou": sum(defined) / len(defined),
        "fw_iou": sum(truth[i] * iou[i] for i in range(c) if truth[i]) / total,
        "iou": iou,  # a list: the checker accepts any 1-d sequence
    }


def _metrics_student(how=None):
    """A student's metrics with numpy, with at most one mistake (``how``)."""

    def metrics(matrix):
        n = matrix.numpy().astype(np.float64)
        if how == "transposed":
            n = n.T
        tp = np.diag(n)
        gt = n.sum(axis=1)
        pr = n.sum(axis=0)
        union = {"precision": pr, "recall": gt, "hits_twice": gt + pr}.get(how, gt + pr - tp)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = tp / union
            acc = tp / gt
        mean_iou = np.nanmean(iou)
        if how == "nan_mean_iou":
            mean_iou = iou.mean()
        elif how == "zero_counted_iou":
            mean_iou = np.nan_to_num(iou).mean()
        elif how == "truth_classes_iou":
            mean_iou = np.nanmean(iou[gt > 0])
        mean_acc = np.nanmean(acc)
        if how == "pixel_as_mean_acc":
            mean_acc = tp.sum() / gt.sum()
        elif how == "nan_mean_acc":
            mean_acc = acc.mean()
        elif how == "zero_counted_acc":
            mean_acc = np.nan_to_num(acc).mean()
        weights = pr if how == "fw_by_prediction" else gt
        fw = (weights * iou).sum() if how == "fw_nan" else np.nansum(weights * iou)
        return {
            "pixel_accuracy": float(tp.sum() / gt.sum()),
            "mean_accuracy": float(mean_acc),
            "mean_iou": float(mean_iou),
            "fw_iou": float(fw / gt.sum()),
            "iou": np.nan_to_num(iou) if how == "absent_iou_zero" else iou,
        }

    return metrics


# ---- the cases are what the mistakes need


def test_matrix_cases_hold_what_the_mistakes_need() -> None:
    cases = _matrix_cases()
    first_pred, first_target, _ = cases[0].args
    # The reference's convention, on a hand-sized 2x3 example: n_ij, rows = ground truth.
    cm = ConfusionMatrix(3)
    cm.update(first_pred, first_target)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    absent_last = [
        c for c in cases
        if not ((c.args[1] == c.args[2] - 1).any() or (c.args[0] == c.args[2] - 1).any())
    ]
    assert absent_last, "no case without the last class: bincount's minlength goes unchecked"
    assert any(c.kwargs.get("ignore_index", 255) != 255 for c in cases)
    assert any(bool((c.args[1] == 255).flatten(1).all(1).any()) for c in cases)
    uint8 = [c for c in cases if c.args[1].dtype == torch.uint8]
    assert uint8 and all(int(c.args[2]) * int(c.args[1][c.args[1] != 255].max()) > 255
                         for c in uint8)
    assert any(c.args[1].shape[-1] != c.args[1].shape[-2] for c in cases)
    assert any(c.args[1].shape[0] > 1 for c in cases)


def test_metric_cases_hold_every_kind_of_absent_class() -> None:
    kinds = set()
    for case in _metrics_cases():
        (matrix,) = case.args
        truth, predicted = matrix.sum(1), matrix.sum(0)
        kinds |= {"neither"} if bool(((truth == 0) & (predicted == 0)).any()) else set()
        kinds |= {"only predicted"} if bool(((truth == 0) & (predicted > 0)).any()) else set()
        kinds |= {"never predicted"} if bool(((truth > 0) & (predicted == 0)).any()) else set()
    assert kinds == {"neither", "only predicted", "never predicted"}


# ---- right answers


def test_right_answers_pass_with_one_stable_line(capsys: pytest.CaptureFixture[str]) -> None:
    check_confusion_matrix(matrix_add_at)
    check_confusion_matrix(matrix_one_hot)
    check_segmentation_metrics(metrics_loops)
    check_segmentation_metrics(_metrics_student())
    line_matrix = "PASS confusion_matrix: all 8 cases agree with fcn_course.metrics.ConfusionMatrix"
    line_metrics = (
        "PASS segmentation_metrics: all 10 cases agree with "
        "fcn_course.metrics.ConfusionMatrix.compute"
    )
    assert capsys.readouterr().out.splitlines() == [line_matrix] * 2 + [line_metrics] * 2


def _with_matrix(matrix: torch.Tensor) -> ConfusionMatrix:
    cm = ConfusionMatrix(len(matrix))
    cm.matrix += matrix
    return cm


def test_the_reference_itself_passes() -> None:
    def reference_matrix(pred, target, num_classes, ignore_index=255):
        cm = ConfusionMatrix(num_classes, ignore_index)
        cm.update(pred, target)
        return cm.matrix

    check_confusion_matrix(reference_matrix)
    check_segmentation_metrics(lambda matrix: _with_matrix(matrix).compute())


def test_checkers_leave_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    check_confusion_matrix(matrix_add_at)
    check_segmentation_metrics(metrics_loops)
    assert torch.equal(torch.get_rng_state(), state)


# ---- typical mistakes are named


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (_matrix_student("transposed"), r"case 1 of 8(?s:.*)diagnosis: .*matrix is transposed"),
        (_matrix_student("clamped"), r"case 1 of 8(?s:.*)diagnosis: .*void pixels are counted: "
                                     r"the label 255 is clamped into the last class"),
        (_matrix_student("zero"), r"case 1 of 8(?s:.*)diagnosis: .*void pixels are counted: "
                                  r"they are read as class 0"),
        (_matrix_student("fixed_255"), r"case 6 of 8: .*ignore_index=0(?s:.*)diagnosis: .*"
                                       r"ignore label is written into the code as 255"),
        (_matrix_student("sized_by_labels"), r"case 3 of 8(?s:.*)expected shape \(5, 5\), got "
                                             r"shape \(4, 4\)(?s:.*)diagnosis: .*size comes "
                                             r"from the labels present"),
        (matrix_uint8_overflow, r"case 7 of 8: .*target is torch.uint8, pred torch.int64"
                                r"(?s:.*)diagnosis: .*overflows"),
    ],
)
def test_typical_matrix_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_confusion_matrix(student)
    assert str(failure.value).count("diagnosis:") == 1


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (matrix_without_minlength, r"raised RuntimeError on case 3 of 8(?s:.*)19 counts cannot "
                                   r"fill 5 x 5 cells(?s:.*)minlength=num_classes \*\* 2"),
        (matrix_numpy_without_minlength, r"raised ValueError on case 3 of 8(?s:.*)cannot fill "
                                         r"5 x 5 cells(?s:.*)minlength"),
        (matrix_void_unmasked, r"raised RuntimeError on case 1 of 8(?s:.*)more than the 3 x 3 "
                               r"cells(?s:.*)leave out the void pixels"),
    ],
)
def test_a_failed_reshape_is_explained(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_confusion_matrix(student)


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("transposed", r"case 2 of 10(?s:.*)diagnosis: .*matrix is read transposed"),
        ("precision", r"case 1 of 10(?s:.*)diagnosis: .*TP / \(TP \+ FP\), the precision"),
        ("recall", r"case 1 of 10(?s:.*)diagnosis: .*TP / \(TP \+ FN\), the recall"),
        ("hits_twice", r"case 1 of 10(?s:.*)diagnosis: .*union counts the hits twice"),
        ("nan_mean_iou", r"case 3 of 10: .*class 2 in neither ground truth nor prediction"
                         r"(?s:.*)mean_iou: nan(?s:.*)diagnosis: .*mean IU averages over every "
                         r"class"),
        ("zero_counted_iou", r"case 3 of 10(?s:.*)diagnosis: .*mean IU counts a class absent "
                             r"from both ground truth and prediction as IoU 0"),
        ("truth_classes_iou", r"case 4 of 10: .*class 2 only in the prediction(?s:.*)diagnosis: "
                              r".*mean IU leaves out the classes that are predicted"),
        ("absent_iou_zero", r"case 3 of 10(?s:.*)diagnosis: .*IoU of a class absent from both "
                            r"ground truth and prediction is 0 instead of NaN"),
        ("fw_by_prediction", r"case 2 of 10(?s:.*)diagnosis: .*weighted by the predicted "
                             r"frequency"),
        ("fw_nan", r"case 3 of 10(?s:.*)fw_iou: nan(?s:.*)diagnosis: .*frequency-weighted IU is "
                   r"NaN"),
        ("pixel_as_mean_acc", r"case 1 of 10(?s:.*)diagnosis: .*mean accuracy is the pixel "
                              r"accuracy"),
        ("nan_mean_acc", r"case 3 of 10(?s:.*)diagnosis: .*mean accuracy averages over every "
                         r"class"),
        ("zero_counted_acc", r"case 3 of 10(?s:.*)diagnosis: .*mean accuracy counts a class "
                             r"without ground-truth pixels as accuracy 0"),
    ],
)
def test_typical_metric_mistakes_are_named(how: str, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_segmentation_metrics(_metrics_student(how))
    assert str(failure.value).count("diagnosis:") == 1


def test_one_mistake_is_named_while_another_is_still_there() -> None:
    def precision_and_pixel_accuracy(matrix):
        scores = _metrics_student("precision")(matrix)
        scores["mean_accuracy"] = scores["pixel_accuracy"]
        return scores

    with pytest.raises(CheckFailure, match=r"case 1 of 10(?s:.*)diagnosis: .*the precision"):
        check_segmentation_metrics(precision_and_pixel_accuracy)


def test_an_answer_right_in_the_metrics_it_shares_with_a_mistake_is_not_diagnosed() -> None:
    # Mean IU averaged over every class is NaN only where a class is absent from both; on the
    # other cases it is right, so a student wrong elsewhere must not hear of it.
    def wrong_pixel_accuracy(matrix):
        scores = _metrics_student("nan_mean_iou")(matrix)
        scores["pixel_accuracy"] = 0.5
        return scores

    with pytest.raises(CheckFailure) as failure:
        check_segmentation_metrics(wrong_pixel_accuracy)
    assert "case 1 of 10" in str(failure.value)
    assert "diagnosis:" not in str(failure.value)


# ---- wrong types, shapes, dtypes and side effects fail clearly


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (matrix_float_loop, r"raised TypeError on case 1 of 8(?s:.*)returned a torch.float32 "
                            r"tensor(?s:.*)return an int64 tensor"),
        (lambda *a, **k: matrix_add_at(*a, **k).int(), r"returned a torch.int32 tensor"),
        (lambda *a, **k: matrix_add_at(*a, **k).numpy(), r"expected a torch.Tensor, got ndarray"),
        (lambda *a, **k: matrix_add_at(*a, **k).tolist(), r"expected a torch.Tensor, got list"),
        (lambda *a, **k: None, r"expected a torch.Tensor, got NoneType"),
        (lambda *a, **k: matrix_add_at(*a, **k).flatten(), r"expected shape \(3, 3\), got shape "
                                                           r"\(9,\)"),
        (matrix_edits_target, r"changed its argument target in place"),
        (lambda pred, target, num_classes: matrix_add_at(pred, target, num_classes),
         r"case 6 of 8(?s:.*)unexpected keyword argument 'ignore_index'"),
    ],
)
def test_wrong_matrix_types_and_side_effects_fail_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_confusion_matrix(student)


def _replace(key, value):
    def metrics(matrix):
        scores = metrics_loops(matrix)
        if value is KeyError:
            del scores[key]
        else:
            scores[key] = value(matrix, scores) if callable(value) else value
        return scores

    return metrics


def metrics_edit_matrix(matrix):
    scores = metrics_loops(matrix)
    matrix.fill_diagonal_(0)
    return scores


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (lambda m: tuple(metrics_loops(m).values()), r"returned tuple; expected a dict with the "
                                                     r"keys 'pixel_accuracy'"),
        (_replace("iou", KeyError), r"your dict lacks 'iou' \(it has 'pixel_accuracy', "
                                    r"'mean_accuracy', 'mean_iou', 'fw_iou'\)"),
        (_replace("mean_iou", KeyError), r"lacks 'mean_iou'"),
        (_replace("iou", lambda m, s: s["iou"][:-1]), r"'iou' is list \[.*expected the IoU of "
                                                      r"each class: 3 numbers"),
        (_replace("iou", lambda m, s: torch.tensor(s["iou"])[None]), r"'iou' is a tensor of "
                                                                     r"shape \(1, 3\)"),
        (_replace("mean_iou", lambda m, s: torch.tensor(s["iou"])), r"dict's 'mean_iou' is a "
                                                                   r"tensor of shape \(3,\); "
                                                                   r"expected one number"),
        (_replace("fw_iou", "0.4667"), r"'fw_iou' is str '0.4667'"),
        (metrics_edit_matrix, r"changed its argument matrix in place"),
    ],
)
def test_wrong_metric_types_and_side_effects_fail_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=r"case 1 of 10(?s:.*)" + match):
        check_segmentation_metrics(student)


def test_metric_values_as_tensors_and_numpy_numbers_are_accepted() -> None:
    def as_tensors(matrix):
        scores = metrics_loops(matrix)
        return {
            **{k: torch.tensor(scores[k]) for k in ("pixel_accuracy", "mean_iou")},
            "mean_accuracy": np.float32(scores["mean_accuracy"]),
            "fw_iou": torch.tensor([scores["fw_iou"]]),
            "iou": tuple(scores["iou"]),
            "accuracy": "extra keys are ignored",
        }

    check_segmentation_metrics(as_tensors)


def test_stubs_and_non_callables_are_reported() -> None:
    def stub_matrix(pred, target, num_classes, ignore_index=255):
        raise NotImplementedError("use torch.bincount")

    def stub_metrics(matrix):
        raise NotImplementedError("n = matrix.double()")

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)use torch.bincount"):
        check_confusion_matrix(stub_matrix)
    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)matrix.double"):
        check_segmentation_metrics(stub_metrics)
    with pytest.raises(TypeError, match=r"pass the function itself"):
        check_confusion_matrix(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"pass the function itself"):
        check_segmentation_metrics({"mean_iou": 0.5})
