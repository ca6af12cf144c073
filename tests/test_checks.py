"""The exercise checkers have teeth: right answers pass, typical wrong answers are named."""

from __future__ import annotations

import pytest
import torch

from fcn_course.checks import CheckFailure, check_bilinear_kernel, check_conv_transpose_output_size
from fcn_course.models import bilinear_kernel, conv_transpose_output_size

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
