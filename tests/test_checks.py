"""The exercise checkers have teeth: right answers pass, typical wrong answers are named."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fcn_course.checks import (
    CheckFailure,
    check_bilinear_kernel,
    check_conv_transpose2d,
    check_conv_transpose_output_size,
)
from fcn_course.checks.upsample import _tconv_cases
from fcn_course.models import bilinear_kernel, conv_transpose2d, conv_transpose_output_size

# ---- answers a student might write (independent of the checkers' own list of mistakes)


def student_size_right(size, kernel_size, stride=1, padding=0):
    return stride * (size - 1) + kernel_size - 2 * padding


def student_size_missing_2p(size, kernel_size, stride=1, padding=0):
    return stride * (size - 1) + kernel_size


def student_size_conv_formula(size, kernel_size, stride=1, padding=0):
    return (size - kernel_size + 2 * padding) // stride + 1


def student_size_random_wrong(size, kernel_size, stride=1, padding=0):
    return size * stride + 1


def _tent_kernel(in_c, out_c, k, centre, factor, diagonal=True):
    rows = [[(1 - abs(i - centre) / factor) * (1 - abs(j - centre) / factor) for j in range(k)]
            for i in range(k)]
    filt = torch.tensor(rows, dtype=torch.float32)
    w = torch.zeros(in_c, out_c, k, k)
    for a in range(in_c):
        for b in range(out_c):
            if a == b or not diagonal:
                w[a, b] = filt
    return w


def student_kernel_right(in_channels, out_channels, kernel_size):
    f = (kernel_size + 1) // 2
    c = f - 1 if kernel_size % 2 else f - 0.5
    return _tent_kernel(in_channels, out_channels, kernel_size, c, f)


def student_kernel_centre_half_off(in_channels, out_channels, kernel_size):
    f = (kernel_size + 1) // 2
    return _tent_kernel(in_channels, out_channels, kernel_size, f - 1, f)


def student_kernel_not_diagonal(in_channels, out_channels, kernel_size):
    f = (kernel_size + 1) // 2
    c = f - 1 if kernel_size % 2 else f - 0.5
    return _tent_kernel(in_channels, out_channels, kernel_size, c, f, diagonal=False)


def student_kernel_conv_layout(in_channels, out_channels, kernel_size):
    return student_kernel_right(out_channels, in_channels, kernel_size)


def student_kernel_numpy(in_channels, out_channels, kernel_size):
    return student_kernel_right(in_channels, out_channels, kernel_size).numpy()


def test_reference_and_a_right_answer_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check_conv_transpose_output_size(conv_transpose_output_size)
    check_conv_transpose_output_size(student_size_right)
    check_bilinear_kernel(bilinear_kernel)
    check_bilinear_kernel(student_kernel_right)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "PASS conv_transpose_output_size: all 10 cases agree with "
        "fcn_course.models.conv_transpose_output_size",
    ] * 2 + ["PASS bilinear_kernel: all 9 cases agree with fcn_course.models.bilinear_kernel"] * 2


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (student_size_missing_2p, r"case 3 of 10.*padding=1\)\n  expected 8, got 10\n"
                                  r"diagnosis: .*missing the -2p term"),
        (student_size_conv_formula, r"expected 7, got 3\ndiagnosis: .*ordinary \(forward\)"),
    ],
)
def test_typical_output_size_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_conv_transpose_output_size(student)


def test_unknown_output_size_mistake_gets_general_hint() -> None:
    with pytest.raises(CheckFailure, match=r"(?s)expected 7, got 6\nhint: place the n inputs") as e:
        check_conv_transpose_output_size(student_size_random_wrong)
    assert "diagnosis" not in str(e.value)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (student_kernel_centre_half_off, r"kernel_size=4\).*(?s:.*)centre is off by half a pixel"),
        (student_kernel_not_diagonal, r"in_channels=2, out_channels=2.*(?s:.*)channel diagonal"),
        (student_kernel_conv_layout, r"expected shape \(2, 3, 4, 4\), got shape \(3, 2, 4, 4\)"
                                     r"(?s:.*)layout \(out_channels, in_channels"),
        (student_kernel_numpy, r"expected a torch.Tensor, got ndarray"),
    ],
)
def test_typical_kernel_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_bilinear_kernel(student)


def test_unimplemented_and_crashing_answers() -> None:
    def stub(*args, **kwargs):
        raise NotImplementedError("build the tent first")

    def crashes(in_channels, out_channels, kernel_size):
        return torch.zeros(in_channels)[out_channels + 10]

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)build the tent first"):
        check_bilinear_kernel(stub)
    with pytest.raises(CheckFailure, match=r"raised IndexError on case 1 of 9"):
        check_bilinear_kernel(crashes)
    with pytest.raises(TypeError, match="pass the function itself"):
        check_bilinear_kernel(bilinear_kernel(1, 1, 4))


# ---- conv_transpose2d: a student's loops over plain Python lists, with switchable mistakes


def _student_tconv(x, weight, bias=None, stride=1, padding=0, *, conv_layout=False, flip=False,
                   crop="both", add_bias=True, step=None, gap=None):
    """Scatter every input pixel's kernel into a canvas, then crop; the flags add mistakes.

    conv_layout: weight read as (out, in, kH, kW); flip: tap (a, b) painted from
    weight[..., kH-1-a, kW-1-b]; crop: "both", "none", "start" (top/left) or "end"
    (bottom/right); step: distance between painted inputs; gap: the one the canvas is sized for.
    """
    xs, ws = x.tolist(), weight.tolist()
    n, _, h, w = x.shape
    if conv_layout:
        c_out, c_in, kh, kw = weight.shape
    else:
        c_in, c_out, kh, kw = weight.shape
    gap = stride if gap is None else gap
    step = gap if step is None else step
    rows, cols = (h - 1) * gap + kh, (w - 1) * gap + kw
    canvas = [[[[0.0] * cols for _ in range(rows)] for _ in range(c_out)] for _ in range(n)]
    for b in range(n):
        for c in range(c_in):
            for o in range(c_out):
                k = ws[o][c] if conv_layout else ws[c][o]
                for i in range(h):
                    for j in range(w):
                        for a in range(kh):
                            for e in range(kw):
                                tap = k[kh - 1 - a][kw - 1 - e] if flip else k[a][e]
                                canvas[b][o][i * step + a][j * step + e] += xs[b][c][i][j] * tap
    start = {"both": padding, "none": 0, "start": padding, "end": 0}[crop]
    end = {"both": padding, "none": 0, "start": 0, "end": 2 * padding}[crop]
    out = torch.tensor(canvas)[:, :, start : rows - end, start : cols - end]
    if bias is not None and add_bias:
        out = out + torch.tensor(bias.tolist()).view(1, -1, 1, 1)
    return out


def student_tconv_right(x, weight, bias=None, stride=1, padding=0):
    return _student_tconv(x, weight, bias, stride, padding)


def test_conv_transpose2d_reference_torch_and_a_right_answer_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_conv_transpose2d(conv_transpose2d)
    check_conv_transpose2d(F.conv_transpose2d)  # the independent oracle
    check_conv_transpose2d(student_tconv_right)
    assert capsys.readouterr().out.splitlines() == [
        "PASS conv_transpose2d: all 10 cases agree with fcn_course.models.conv_transpose2d"
    ] * 3


def test_conv_transpose2d_cases_cover_the_settings_a_student_meets() -> None:
    seen = {"stride": set(), "padding": set(), "kernel": set(), "bias": set()}
    non_square_input = non_square_kernel = unequal_channels = batched = False
    for case in _tconv_cases():
        x, weight = case.args
        seen["stride"].add(case.kwargs["stride"])
        seen["padding"].add(case.kwargs["padding"])
        seen["kernel"].update(weight.shape[2:])
        seen["bias"].add(case.kwargs["bias"] is not None)
        non_square_input |= x.shape[2] != x.shape[3]
        non_square_kernel |= weight.shape[2] != weight.shape[3]
        unequal_channels |= weight.shape[0] != weight.shape[1]
        batched |= x.shape[0] > 1
    assert seen == {"stride": {1, 2, 3}, "padding": {0, 1, 2}, "kernel": {1, 2, 3, 4},
                    "bias": {False, True}}
    assert non_square_input and non_square_kernel and unequal_channels and batched


@pytest.mark.parametrize(
    ("mistake", "match"),
    [
        ({"conv_layout": True}, r"case 2 of 10(?s:.*)layout \(out_channels, in_channels, k, k\)"),
        ({"flip": True}, r"case 1 of 10(?s:.*)diagnosis: .*kernel is flipped"),
        ({"crop": "none"}, r"case 3 of 10(?s:.*)expected shape \(2, 3, 4, 3\), got shape "
                           r"\(2, 3, 6, 5\)(?s:.*)padding is not cut off"),
        ({"crop": "start"}, r"case 3 of 10(?s:.*)got shape \(2, 3, 5, 4\)(?s:.*)"
                            r"cut from the top and left only"),
        ({"crop": "end"}, r"case 3 of 10(?s:.*)values differ(?s:.*)"
                          r"cut from the bottom and right only"),
        ({"add_bias": False}, r"case 3 of 10(?s:.*)diagnosis: .*bias is omitted"),
        ({"step": 1}, r"case 2 of 10(?s:.*)placed 1 apart instead of `stride` apart"),
        ({"gap": 2}, r"case 1 of 10(?s:.*)got shape \(1, 1, 6, 6\)(?s:.*)"
                     r"placed stride \+ 1 apart"),
    ],
    ids=["conv_layout", "flipped", "no_crop", "crop_top_left", "crop_bottom_right", "no_bias",
         "stride_ignored", "stride_plus_one"],
)
def test_typical_conv_transpose2d_mistakes_are_named(mistake: dict, match: str) -> None:
    def student(x, weight, bias=None, stride=1, padding=0):
        kw = dict(mistake)
        if kw.get("gap") == 2:  # "stride zeros between inputs": inputs stride + 1 apart
            kw["gap"] = stride + 1
        return _student_tconv(x, weight, bias, stride, padding, **kw)

    with pytest.raises(CheckFailure, match=match):
        check_conv_transpose2d(student)


def test_unknown_conv_transpose2d_mistake_gets_general_hint() -> None:
    def doubled(x, weight, bias=None, stride=1, padding=0):
        return 2 * F.conv_transpose2d(x, weight, bias, stride, padding)

    match = r"case 1 of 10(?s:.*)hint: start from a zero canvas"
    with pytest.raises(CheckFailure, match=match) as e:
        check_conv_transpose2d(doubled)
    assert "diagnosis" not in str(e.value)


def test_a_nan_answer_is_reported_where_it_appears() -> None:
    from fcn_course.checks._core import Case, CheckFailure, run_checks

    def reference(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    def student(x: torch.Tensor) -> torch.Tensor:
        out = x * 2
        out[0, 1] = float("nan")
        return out

    with pytest.raises(CheckFailure, match=r"1 value\(s\) are NaN .* index \(0, 1\)"):
        run_checks("double", student, reference, [Case((torch.ones(2, 3),))],
                   reference_name="reference")
