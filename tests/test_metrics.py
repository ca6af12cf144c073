"""Tests of fcn_course.metrics against hand-computed matrices and a naive pixel loop."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fcn_course.metrics import (
    ConfusionMatrix,
    TrimapAccuracy,
    boundary_accuracy,
    per_image_mean_iou,
    trimap_band,
)

# A 2x3 image (one void pixel) and its prediction; three classes.
TARGET = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
PRED = torch.tensor([[[0, 1, 1], [2, 2, 0]]])


def nan_equal(a: list[float], b: list[float]) -> bool:
    return all(
        (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y)
        for x, y in zip(a, b, strict=True)
    )


def test_hand_computed_two_by_three_example() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TARGET)
    # rows = ground truth, columns = prediction; the void pixel is not counted.
    assert cm.matrix.dtype == torch.int64
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    scores = cm.compute()
    # t = (2, 2, 1), predicted = (1, 2, 2), n_ii = (1, 1, 1)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 5)
    assert scores["accuracy"] == pytest.approx([1 / 2, 1 / 2, 1])
    assert scores["mean_accuracy"] == pytest.approx(2 / 3)
    assert scores["iou"] == pytest.approx([1 / 2, 1 / 3, 1 / 2])
    assert scores["mean_iou"] == pytest.approx(4 / 9)
    assert scores["fw_iou"] == pytest.approx((2 * 1 / 2 + 2 * 1 / 3 + 1 * 1 / 2) / 5)
    assert all(isinstance(scores[k], float) for k in ("pixel_accuracy", "mean_iou", "fw_iou"))


def naive_scores(
    preds: list[torch.Tensor], targets: list[torch.Tensor], n: int, ignore: int
) -> tuple[list[list[int]], dict[str, float]]:
    """The FCN paper's formulas, written as plain loops over pixels and classes."""
    mat = [[0] * n for _ in range(n)]
    for pred, target in zip(preds, targets, strict=True):
        for p, t in zip(pred.flatten().tolist(), target.flatten().tolist(), strict=True):
            if t != ignore:
                mat[t][p] += 1
    t = [sum(mat[i]) for i in range(n)]
    col = [sum(mat[j][i] for j in range(n)) for i in range(n)]
    accs = [mat[i][i] / t[i] for i in range(n) if t[i] > 0]
    ious = [mat[i][i] / (t[i] + col[i] - mat[i][i]) for i in range(n) if t[i] + col[i] > 0]
    fw = sum(t[i] * mat[i][i] / (t[i] + col[i] - mat[i][i]) for i in range(n) if t[i] > 0)
    return mat, {
        "pixel_accuracy": sum(mat[i][i] for i in range(n)) / sum(t),
        "mean_accuracy": sum(accs) / len(accs),
        "mean_iou": sum(ious) / len(ious),
        "fw_iou": fw / sum(t),
    }


def test_matches_naive_loop_over_several_batches() -> None:
    g = torch.Generator().manual_seed(0)
    n = 5
    cm = ConfusionMatrix(n)
    preds, targets = [], []
    for _ in range(3):
        target = torch.randint(0, n - 1, (2, 7, 9), generator=g)  # class 4 never in truth
        target[torch.rand(2, 7, 9, generator=g) < 0.1] = 255
        pred = torch.randint(0, n, (2, 7, 9), generator=g)
        cm.update(pred, target)
        preds.append(pred)
        targets.append(target)
    matrix, expected = naive_scores(preds, targets, n, 255)
    assert cm.matrix.tolist() == matrix
    scores = cm.compute()
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value), key


def test_absent_classes_rule() -> None:
    # Class 2 is predicted but absent from the truth; class 3 appears nowhere.
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 2, 1, 1]]])
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    scores = cm.compute()
    assert nan_equal(scores["iou"], [1 / 2, 1.0, 0.0, math.nan])
    assert nan_equal(scores["accuracy"], [1 / 2, 1.0, math.nan, math.nan])
    # mean IU: n_cl = 3 (class 2's false positive counts as a real error, class 3 is left out)
    assert scores["mean_iou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    # mean accuracy: n_cl = 2 (only classes with ground-truth pixels have an accuracy)
    assert scores["mean_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert scores["fw_iou"] == pytest.approx((2 * 1 / 2 + 2 * 1) / 4)


def test_empty_matrix_scores_are_nan() -> None:
    cm = ConfusionMatrix(3)
    scores = cm.compute()
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert math.isnan(scores[key])
    assert all(math.isnan(v) for v in scores["iou"])


def test_ignored_pixels_are_not_counted() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 3, (2, 6, 6), generator=g)
    void = torch.rand(2, 6, 6, generator=g) < 0.3
    target[void] = 255
    pred = torch.randint(0, 3, (2, 6, 6), generator=g)
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    assert int(cm.matrix.sum()) == int((~void).sum())
    other = pred.clone()
    other[void] = (other[void] + 1) % 3  # change every prediction at a void pixel
    cm2 = ConfusionMatrix(3)
    cm2.update(other, target)
    assert torch.equal(cm.matrix, cm2.matrix)


def test_logits_and_labels_give_the_same_matrix() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 5, 5, generator=g)
    target = torch.randint(0, 4, (2, 5, 5), generator=g)
    from_logits, from_labels = ConfusionMatrix(4), ConfusionMatrix(4)
    from_logits.update(logits, target)
    from_labels.update(logits.argmax(1), target)
    assert torch.equal(from_logits.matrix, from_labels.matrix)


def test_accumulate_merge_and_reset() -> None:
    g = torch.Generator().manual_seed(3)
    target = torch.randint(0, 3, (4, 5, 5), generator=g)
    pred = torch.randint(0, 3, (4, 5, 5), generator=g)
    whole = ConfusionMatrix(3)
    whole.update(pred, target)
    first, second = ConfusionMatrix(3), ConfusionMatrix(3)
    first.update(pred[:2], target[:2])
    second.update(pred[2:], target[2:])
    assert torch.equal(first.merge(second).matrix, whole.matrix)
    whole.reset()
    assert int(whole.matrix.sum()) == 0


def test_all_reduce_is_a_no_op_without_distributed() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TARGET)
    before = cm.matrix.clone()
    assert cm.all_reduce() is cm
    assert torch.equal(cm.matrix, before)


WORKER = """
import sys
import torch
import torch.distributed as dist
from fcn_course.metrics import ConfusionMatrix

rank, store = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=2)
cm = ConfusionMatrix(3)
cm.update(torch.tensor([[[rank, 1]]]), torch.tensor([[[0, 2]]]))
cm.all_reduce()
assert cm.matrix.tolist() == [[1, 1, 0], [0, 0, 0], [0, 2, 0]], cm.matrix
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_all_reduce_sums_over_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    store = str(tmp_path / "store")
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), store],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in (0, 1)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]


def test_str_shows_class_names_and_scores() -> None:
    cm = ConfusionMatrix(3, class_names=["background", "disc", "bar"])
    cm.update(PRED, TARGET)
    text = str(cm)
    for name in ("background", "disc", "bar"):
        assert name in text
    assert "mean IoU 44.4" in text
    assert "pixel acc 60.0" in text
    assert "num_classes=3" in repr(cm)
    absent = ConfusionMatrix(4)
    absent.update(PRED, TARGET)
    assert str(absent).splitlines()[4].split()[-3:] == ["-", "-", "0"]


def test_per_image_mean_iou_differs_from_data_set_mean_iou() -> None:
    # Image 0: large and perfect; image 1: tiny and entirely wrong.
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    pred = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    pred[0, :2] = 1
    target[1] = 255
    target[1, 0, 0] = 1
    pred[1, 0, 0] = 0
    per_image = per_image_mean_iou(pred, target, num_classes=2)
    assert per_image.dtype == torch.float64
    # Image 1: class 1 has IU 0/1 and class 0 (only predicted) IU 0/1: mean 0.
    assert per_image.tolist() == [1.0, 0.0]
    cm = ConfusionMatrix(2)
    cm.update(pred, target)
    # Pooled: class 0 IU 8/9, class 1 IU 8/9
    assert cm.compute()["mean_iou"] == pytest.approx(8 / 9)
    assert per_image.mean().item() == pytest.approx(0.5)


def test_per_image_mean_iou_matches_one_matrix_per_image() -> None:
    g = torch.Generator().manual_seed(4)
    target = torch.randint(0, 4, (3, 6, 6), generator=g)
    target[0] = 255  # no labelled pixels: NaN
    pred = torch.randn(3, 4, 6, 6, generator=g)
    per_image = per_image_mean_iou(pred, target, num_classes=4)
    assert math.isnan(per_image[0].item())
    for i in (1, 2):
        cm = ConfusionMatrix(4)
        cm.update(pred[i : i + 1], target[i : i + 1])
        assert per_image[i].item() == pytest.approx(cm.compute()["mean_iou"])


def naive_band(target: torch.Tensor, width: int, ignore: int = 255) -> torch.Tensor:
    """Pixels with a labelled pixel of another class within Chebyshev distance ``width``."""
    n, h, w = target.shape
    band = torch.zeros(n, h, w, dtype=torch.bool)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                here = int(target[b, y, x])
                if here == ignore:
                    continue
                window = target[b, max(0, y - width) : y + width + 1,
                                max(0, x - width) : x + width + 1]
                band[b, y, x] = bool(((window != ignore) & (window != here)).any())
    return band


def test_trimap_band_by_hand() -> None:
    # Columns: 0 0 255 1 1 1 -- a void column sits on the boundary.
    target = torch.tensor([[0, 0, 255, 1, 1, 1]]).repeat(4, 1).unsqueeze(0)
    assert not trimap_band(target, width=1).any()  # the void column hides the boundary
    band = trimap_band(target, width=2)
    assert band[0, 0].tolist() == [False, True, False, True, False, False]
    assert band.shape == target.shape and band.dtype == torch.bool
    # Without the void column the band of width 1 is the two columns at the boundary.
    target[target == 255] = 0
    assert trimap_band(target, width=1)[0, 0].tolist() == [False, False, True, True, False, False]


def test_trimap_band_matches_naive_loop() -> None:
    g = torch.Generator().manual_seed(5)
    target = torch.zeros(2, 9, 11, dtype=torch.long)
    target[:, 2:6, 3:8] = 1
    target[0, 5:, :4] = 2
    target[torch.rand(2, 9, 11, generator=g) < 0.1] = 255
    for width in (1, 2, 3):
        assert torch.equal(trimap_band(target, width=width), naive_band(target, width))


def test_boundary_accuracy_by_hand() -> None:
    target = torch.tensor([[0, 0, 0, 1, 1, 1]]).repeat(2, 1).unsqueeze(0)  # (1, 2, 6)
    pred = target.clone()
    pred[0, 0, 2] = 1  # one error inside the band of width 1 (columns 2, 3)
    pred[0, 0, 0] = 1  # one error far from the boundary
    assert boundary_accuracy(pred, target, width=1) == pytest.approx(3 / 4)
    # Width 2 covers columns 1..4: 8 pixels, one wrong.
    assert boundary_accuracy(pred, target, width=2) == pytest.approx(7 / 8)
    meter = TrimapAccuracy([1, 2])
    meter.update(pred, target)
    meter.update(target, target)
    assert meter.compute() == {1: pytest.approx(7 / 8), 2: pytest.approx(15 / 16)}
    meter.reset()
    assert all(math.isnan(v) for v in meter.compute().values())


@pytest.mark.parametrize(
    ("pred", "target", "error", "match"),
    [
        (PRED, TARGET.masked_fill(TARGET == 2, 5), ValueError, r"values \{5\}.*ignore_index=5"),
        (PRED, TARGET.float(), TypeError, r"'target' expected an integer tensor"),
        (PRED, TARGET[0], ValueError, r"'target' expected a 3-d tensor.*unsqueeze\(0\)"),
        (PRED[:, :1], TARGET, ValueError, r"'pred'.*differ in H: 1 vs 2"),
        (PRED.float(), TARGET, TypeError, r"'pred' expected integer labels.*\.long\(\)"),
        (PRED + 3, TARGET, ValueError, r"'pred' expected labels in range\(3\)"),
        (torch.randn(1, 4, 2, 3), TARGET, ValueError, r"3 class scores in dim 1"),
        (torch.zeros(1, 3, 2, 3, dtype=torch.long), TARGET, TypeError, r"read as class scores"),
        (PRED.numpy(), TARGET, TypeError, r"'pred' expected a torch.Tensor"),
    ],
)
def test_bad_updates(
    pred: torch.Tensor, target: torch.Tensor, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ConfusionMatrix(3).update(pred, target)


def test_bad_constructor_and_merge() -> None:
    with pytest.raises(ValueError, match=r"'num_classes' expected a positive int, got 0"):
        ConfusionMatrix(0)
    with pytest.raises(ValueError, match=r"'class_names' expected 3 names.*got 2 names"):
        ConfusionMatrix(3, class_names=["a", "b"])
    with pytest.raises(TypeError, match=r"'class_names' expected a sequence of strings"):
        ConfusionMatrix(3, class_names="abc")
    with pytest.raises(ValueError, match=r"'other' expected num_classes=3, got num_classes=4"):
        ConfusionMatrix(3).merge(ConfusionMatrix(4))
    with pytest.raises(TypeError, match=r"'other' expected a ConfusionMatrix"):
        ConfusionMatrix(3).merge(torch.zeros(3, 3))


def test_bad_trimap_and_per_image_arguments() -> None:
    with pytest.raises(ValueError, match=r"'width' expected a positive int, got 0"):
        boundary_accuracy(PRED, TARGET, width=0)
    with pytest.raises(TypeError, match=r"'widths' expected an int or a non-empty sequence"):
        TrimapAccuracy([])
    with pytest.raises(TypeError, match=r"'target' expected an integer tensor"):
        trimap_band(TARGET.float(), width=1)
    with pytest.raises(ValueError, match=r"'target' expected labels in range\(2\)"):
        per_image_mean_iou(PRED.clamp(max=1), TARGET, num_classes=2)
    with pytest.raises(TypeError, match=r"'num_classes' expected an int"):
        per_image_mean_iou(PRED, TARGET, num_classes=None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_give_the_cpu_results() -> None:
    g = torch.Generator().manual_seed(6)
    target = torch.randint(0, 4, (2, 9, 9), generator=g)
    target[:, 0] = 255
    logits = torch.randn(2, 4, 9, 9, generator=g)
    on_cpu, on_gpu = ConfusionMatrix(4), ConfusionMatrix(4)
    on_cpu.update(logits, target)
    on_gpu.update(logits.cuda(), target.cuda())
    assert on_gpu.matrix.is_cuda
    assert torch.equal(on_gpu.matrix.cpu(), on_cpu.matrix)
    assert nan_equal(on_gpu.compute()["iou"], on_cpu.compute()["iou"])
    torch.testing.assert_close(
        per_image_mean_iou(logits.cuda(), target.cuda(), num_classes=4),
        per_image_mean_iou(logits, target, num_classes=4),
    )
    assert torch.equal(trimap_band(target.cuda(), width=2).cpu(), trimap_band(target, width=2))
    assert boundary_accuracy(logits.cuda(), target.cuda(), width=2) == pytest.approx(
        boundary_accuracy(logits, target, width=2)
    )
