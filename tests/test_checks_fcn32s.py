"""The checkers of exercise 04 (FCN-32s) have teeth: right answers pass, typical wrong ones
are named, and wrong types or shapes fail with a clear message."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_course.checks import CheckFailure, check_fcn32s_head, check_upscore_crop_offset
from fcn_course.checks import fcn32s as checks
from fcn_course.models import (
    AxisMap,
    bilinear_kernel,
    chain,
    conv_map,
    conv_transpose_map,
    crop_offset,
    fcn32s,
    init_bilinear_,
    paper_crop_offsets,
)

# ---- task 1: answers a student might write (independent of the checker's list of mistakes)


def offset_right(layers, upscore):
    """Float arithmetic, as most students will write it."""
    stride, offset = 1, 0.0
    for k, s, p in layers:
        offset += stride * ((k - 1) / 2 - p)
        stride *= s
    k_up, s_up = upscore
    return int((k_up - 1) / 2 * stride / s_up - offset)


def offset_with_package_geometry(layers, upscore):
    path = chain([*(conv_map(k, s, p) for k, s, p in layers), conv_transpose_map(*upscore)])
    return crop_offset(path.x, AxisMap())


def offset_padding_ignored(layers, upscore):
    stride, offset = 1, 0.0
    for k, s, _p in layers:
        offset += stride * (k - 1) / 2
        stride *= s
    return int((upscore[0] - 1) / 2 - offset)


def offset_not_scaled(layers, upscore):
    offset = sum((k - 1) / 2 - p for k, _s, p in layers)
    return (upscore[0] - 1) / 2 - offset  # a float, 2.5 on the first case it gets wrong


def offset_stride_updated_first(layers, upscore):
    stride, offset = 1, 0.0
    for k, s, p in layers:
        stride *= s
        offset += stride * ((k - 1) / 2 - p)
    return round((upscore[0] - 1) / 2 - offset)  # rounded: still diagnosed


def offset_upscore_stride(layers, upscore):
    right = offset_right(layers, upscore)
    return right - (upscore[0] - upscore[1]) // 2


def offset_sign_flipped(layers, upscore):
    return -offset_right(layers, upscore)


def offset_random_wrong(layers, upscore):
    return offset_right(layers, upscore) + 7


def test_crop_offset_cases_match_independent_values() -> None:
    """Hand-derived crops, the paper's 19 (its Caffe nets) and the course's 16 (fcn32s)."""
    expected = [0, 1, 0, 2, 1, 100, 16, 19]
    got = [checks._reference_crop_offset(*case.args) for case in checks._OFFSET_CASES]
    assert got == expected
    assert paper_crop_offsets()["fcn32s"]["upscore"] == 19
    assert fcn32s().crop_offsets["upscore"] == (16, 16)
    assert "conv1_1 padded by 100" in checks._OFFSET_CASES[-1].describe("f")


def test_crop_offset_right_answers_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check_upscore_crop_offset(offset_right)
    check_upscore_crop_offset(offset_with_package_geometry)
    check_upscore_crop_offset(lambda layers, upscore: np.int64(offset_right(layers, upscore)))
    line = "PASS upscore_crop_offset: all 8 cases agree with fcn_course.models.crop_offset"
    assert capsys.readouterr().out.splitlines() == [line] * 3


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (offset_padding_ignored,
         r"case 4 of 8: .*\(8, 4\)\)\n  expected 2, got -1\ndiagnosis: .*off by the padding"),
        (offset_not_scaled, r"case 4 of 8(?s:.*)expected 2, got 2.5\n.*without the stride"),
        (offset_stride_updated_first, r"case 1 of 8(?s:.*)expected 0, got -2\n"
                                      r".*includes the layer's own"),
        (offset_upscore_stride, r"case 1 of 8(?s:.*)expected 0, got -1\n.*from its stride"),
        (offset_sign_flipped, r"case 2 of 8(?s:.*)expected 1, got -1\n.*sign is flipped"),
    ],
)
def test_typical_crop_offset_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_upscore_crop_offset(student)


@pytest.mark.parametrize("mistake", checks._OFFSET_MISTAKES, ids=lambda m: m.name[:30])
@pytest.mark.parametrize("rounding", [None, int, round, math.floor, math.ceil])
def test_a_rounded_mistake_is_never_blamed_on_another(mistake, rounding) -> None:
    """A student who rounds a fractional wrong answer gets its diagnosis or none at all."""
    def student(layers, upscore):
        value = mistake.implementation(layers, upscore)
        return value if rounding is None else rounding(value)

    with pytest.raises(CheckFailure) as failure:
        check_upscore_crop_offset(student)
    named = re.search(r"typical mistake: (.*)\.\n", str(failure.value))
    if rounding is None:
        assert named and named.group(1) == mistake.name
    else:
        assert named is None or named.group(1) == mistake.name


def test_unknown_crop_offset_mistake_gets_the_general_hint() -> None:
    with pytest.raises(CheckFailure, match=r"expected 0, got 7\nhint: compose") as failure:
        check_upscore_crop_offset(offset_random_wrong)
    assert "diagnosis" not in str(failure.value)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (lambda layers, upscore: float(offset_right(layers, upscore)),
         r"returned 0.0 \(float\) on case 1 of 8(?s:.*)expected an int(?s:.*)return int"),
        (lambda layers, upscore: (offset_right(layers, upscore),) * 2,
         r"case 1 of 8(?s:.*)expected a number, got tuple \(0, 0\)"),
        (lambda layers, upscore: torch.tensor(offset_right(layers, upscore)),
         r"expected a number, got Tensor"),
        (lambda layers, upscore: None, r"expected a number, got NoneType"),
    ],
)
def test_crop_offset_of_the_wrong_type_fails_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_upscore_crop_offset(student)


def test_crop_offset_stub_and_non_function() -> None:
    def stub(layers, upscore):
        raise NotImplementedError("compose the maps")

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)compose the maps"):
        check_upscore_crop_offset(stub)
    with pytest.raises(TypeError, match="pass the function itself"):
        check_upscore_crop_offset(19)


# ---- task 2: heads a student might write


class HeadRight(nn.Module):
    def __init__(self, in_channels, num_classes, crop_offset):
        super().__init__()
        self.crop_offset = crop_offset
        self.score_fr = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        nn.init.zeros_(self.score_fr.weight)
        nn.init.zeros_(self.score_fr.bias)
        self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 64, stride=32, bias=False)
        with torch.no_grad():
            self.upscore.weight.copy_(bilinear_kernel(num_classes, num_classes, 64))

    def crop(self, up, size):
        c = self.crop_offset
        return up[..., c : c + size[0], c : c + size[1]]

    def forward(self, features, size):
        return self.crop(self.upscore(self.score_fr(features)), size)


class HeadFunctional(nn.Module):
    """Independent of the package's layers: F.conv2d, F.conv_transpose2d and a hand slice."""

    def __init__(self, in_channels, num_classes, crop_offset):
        super().__init__()
        self.c = crop_offset
        self.score_fr = nn.Conv2d(in_channels, num_classes, 1)
        self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 64, 32, bias=False)
        for p in self.score_fr.parameters():
            nn.init.zeros_(p)
        init_bilinear_(self.upscore)

    def forward(self, features, size):
        h = F.conv2d(features, self.score_fr.weight, self.score_fr.bias)
        h = F.conv_transpose2d(h, self.upscore.weight, stride=32)
        return h[:, :, self.c : self.c + size[0], self.c : self.c + size[1]]


class HeadFromPackage(nn.Module):
    """The package's own layers, taken from fcn32s()."""

    def __init__(self, in_channels, num_classes, crop_offset):
        super().__init__()
        from fcn_course.models import course_vgg

        model = fcn32s(num_classes=num_classes, backbone=course_vgg(fc_width=in_channels))
        self.score_fr, self.upscore = model.score_fr, model.upscore
        self.c = crop_offset

    def forward(self, features, size):
        up = self.upscore(self.score_fr(features))
        return up[..., self.c : self.c + size[0], self.c : self.c + size[1]]


def _head(**overrides):
    """HeadRight with one method or layer replaced: a student's slip."""

    class Head(HeadRight):
        def __init__(self, in_channels, num_classes, crop_offset):
            super().__init__(in_channels, num_classes, crop_offset)
            if "init" in overrides:
                overrides["init"](self, in_channels, num_classes)

    for name, method in overrides.items():
        if name != "init":
            setattr(Head, name, method)
    return Head


def _set(name, layer):
    return lambda head, c, k: setattr(head, name, layer(c, k))


HEAD_MISTAKES = [
    (_head(init=_set("score_fr", lambda c, k: nn.Conv2d(c, k, 1, bias=False))),
     1, r"got 'Conv2d\(256, 7, .*bias=False\)'", "score_fr has no bias"),
    (_head(init=_set("score_fr", lambda c, k: nn.Conv2d(c, k, 1))),
     2, r"expected 'weight zeros, bias zeros', got 'weight non-zero, bias non-zero'",
     "score_fr is not zero-initialised"),
    (_head(init=lambda head, c, k: nn.init.ones_(head.score_fr.bias)),
     2, r"got 'weight zeros, bias non-zero'", "its bias is not"),
    (_head(init=_set("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 64, stride=32))),
     3, r"got 'ConvTranspose2d\(7, 7, kernel_size=\(64, 64\), stride=\(32, 32\)\)'",
     "upscore keeps a bias"),
    (_head(init=_set("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 32, 32, bias=False))),
     3, r"kernel_size=\(32, 32\), stride=\(32, 32\)", "kernel_size is the factor 32"),
    (_head(init=_set("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 32, 64, bias=False))),
     3, r"kernel_size=\(32, 32\), stride=\(64, 64\)", "kernel_size and stride are swapped"),
    (_head(init=_set("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 64, 32, 16, bias=False))),
     3, r"padding=\(16, 16\)", "upscore is padded"),
    (_head(init=_set("upscore", lambda c, k: nn.ConvTranspose2d(k, k, 64, 32, bias=False))),
     4, r"expected 'weight = bilinear_kernel\(7, 7, 64\)', got 'weight = random values",
     "upscore is initialised randomly instead of bilinear"),
    (_head(init=lambda head, c, k: nn.init.zeros_(head.upscore.weight)),
     4, r"got 'weight all zeros'", "zero-initialised like score_fr"),
    (_head(init=lambda head, c, k: head.upscore.weight.data.copy_(
        bilinear_kernel(1, 1, 64).expand(k, k, 64, 64))),
     4, r"on every \(input, output\) channel pair", "not only the channel diagonal"),
    (_head(crop=lambda self, up, size: up),
     5, r"expected shape \(2, 7, 97, 131\), got shape \(2, 7, 160, 192\)", "not cropped"),
    (_head(crop=lambda self, up, size: up[..., : size[0], : size[1]]),
     5, r"values differ", r"top-left corner \(offset 0\)"),
    (_head(crop=lambda self, up, size: up[..., up.shape[-2] - size[0]:, up.shape[-1] - size[1]:]),
     5, r"values differ", "bottom-right corner"),
    (_head(crop=lambda self, up, size: up[..., 31 : 31 + size[0], 30 : 30 + size[1]]),
     5, r"values differ", "cropped at the centre"),
    (_head(crop=lambda self, up, size: up[..., 19 : 19 + size[0], 19 : 19 + size[1]]),
     5, r"values differ", "hard-coded to the paper's 19"),
    (_head(crop=lambda self, up, size: up[..., 16 : 16 + size[0], 16 : 16 + size[1]]),
     8, r"crop_offset=19, .*size=\(45, 77\)\)\n  values differ", "hard-coded to 16"),
    (_head(crop=lambda self, up, size: HeadRight.crop(self, up, (size[1], size[0]))),
     5, r"expected shape \(2, 7, 97, 131\), got shape \(2, 7, 131, 97\)", r"read as \(W, H\)"),
    (_head(crop=lambda self, up, size: F.interpolate(up, size=size, mode="bilinear")),
     5, r"values differ", "resized with F.interpolate"),
]


def test_head_output_cases_match_the_package_and_an_independent_oracle() -> None:
    """Each expected output is fcn32s(image); by hand it is F.conv2d, F.conv_transpose2d with
    the bilinear kernel, and a slice at the crop the chapter derives (16; 19 on the last)."""
    cases, expected = checks._head_cases()
    outputs = [c.kwargs for c in cases if "features" in c.kwargs]
    assert [kw["size"] for kw in outputs] == [(97, 131), (33, 47), (64, 96), (45, 77)]
    assert [kw["crop_offset"] for kw in outputs] == [16, 16, 16, 19]
    for kw in outputs:
        model = checks._reference_model(kw["in_channels"], kw["num_classes"], kw["crop_offset"])
        k, (h, w), c = kw["num_classes"], kw["size"], kw["crop_offset"]
        scores = F.conv2d(kw["features"], model.score_fr.weight, model.score_fr.bias)
        up = F.conv_transpose2d(scores, bilinear_kernel(k, k, 64), stride=32)
        got = expected[checks._output_key(**kw)]
        assert got.shape == (kw["features"].shape[0], k, h, w)
        assert got.abs().mean() > 0.1  # not the zero output of a fresh score_fr
        torch.testing.assert_close(got, up[..., c : c + h, c : c + w])


def test_head_right_answers_pass(capsys: pytest.CaptureFixture[str]) -> None:
    for head in (HeadRight, HeadFunctional, HeadFromPackage):
        check_fcn32s_head(head)
    line = "PASS FCN32sHead: all 8 cases agree with fcn_course.models.fcn32s"
    assert capsys.readouterr().out.splitlines() == [line] * 3


@pytest.mark.parametrize(("student", "case", "detail", "mistake"), HEAD_MISTAKES,
                         ids=[m[3] for m in HEAD_MISTAKES])
def test_typical_head_mistakes_are_named(student, case: int, detail: str, mistake: str) -> None:
    with pytest.raises(CheckFailure, match=rf"case {case} of 8: FCN32sHead\(") as failure:
        check_fcn32s_head(student)
    message = str(failure.value)
    assert re.search(detail, message), message
    assert re.search(rf"diagnosis: this is a typical mistake: [^\n]*{mistake}", message), message


def test_every_registered_head_mistake_is_tested() -> None:
    tested = {m[3] for m in HEAD_MISTAKES}
    for mistake in checks._HEAD_MISTAKES:
        assert any(re.search(t, mistake.name) for t in tested), mistake.name


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (_head(forward=lambda self, features, size: self.crop(
            self.upscore(self.score_fr(features)), size).numpy()),
         r"case 5 of 8(?s:.*)expected a torch.Tensor, got ndarray"),
        (_head(forward=lambda self, features, size: [self.crop(
            self.upscore(self.score_fr(features)), size)]),
         r"expected a torch.Tensor, got list"),
        (_head(forward=lambda self, features, size: self.crop(
            self.upscore(self.score_fr(features)), size)[0]),
         r"expected shape \(2, 7, 97, 131\), got shape \(7, 97, 131\)"),
        (_head(init=lambda head, c, k: delattr(head, "score_fr")),
         r"case 1 of 8(?s:.*)got \"no layer: the head has no nn.Module attribute 'score_fr'"),
        (_head(forward=lambda self, features, size: self.crop(
            self.upscore(self.score_fr(features)), size) + 1),
         r"values differ(?s:.*)\nhint: score_fr = nn.Conv2d"),
    ],
)
def test_head_of_the_wrong_type_or_shape_fails_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_fcn32s_head(student)
    if "values differ" in match:
        assert "diagnosis" not in str(failure.value)


def test_head_stub_instance_and_wrong_signature() -> None:
    class Stub(nn.Module):
        def __init__(self, in_channels, num_classes, crop_offset):
            super().__init__()
            raise NotImplementedError("build score_fr and upscore")

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)build score_fr"):
        check_fcn32s_head(Stub)
    with pytest.raises(TypeError, match=r"got an instance of HeadRight; pass the class itself"):
        check_fcn32s_head(HeadRight(256, 7, 16))
    with pytest.raises(CheckFailure, match=r"raised TypeError on case 1 of 8(?s:.*)'num_classes'"):
        check_fcn32s_head(lambda in_channels, classes, crop_offset: HeadRight(1, 1, 1))
    with pytest.raises(TypeError, match="pass the function itself"):
        check_fcn32s_head("FCN32sHead")


def test_head_check_leaves_the_global_random_state_alone() -> None:
    checks._package_fcn32s.cache_clear()
    checks._reference_model.cache_clear()
    checks._head_cases.cache_clear()
    state = torch.random.get_rng_state()
    check_fcn32s_head(HeadFunctional)
    # HeadFunctional draws nothing from the global generator (it zeroes and fills its layers,
    # but nn.Conv2d's constructor draws), so compare with a run of the constructors alone.
    after_check = torch.random.get_rng_state()
    torch.random.set_rng_state(state)
    for kw in (c.kwargs for c in checks._head_cases()[0]):
        HeadFunctional(kw["in_channels"], kw["num_classes"], kw["crop_offset"])
    assert torch.equal(after_check, torch.random.get_rng_state())


@pytest.mark.slow
def test_check_names_a_wrong_crop_in_the_student_notebook(exercises_copy) -> None:
    """Through the notebook: a head cropped from the top-left corner is named as such."""
    import nbformat

    from fcn_course.exercises import check_exercise

    student = exercises_copy / "04_fcn32s_head.ipynb"
    solution = nbformat.read(exercises_copy / "solutions" / student.name, as_version=4)
    nb = nbformat.read(student, as_version=4)
    for s_cell, r_cell in zip(nb.cells, solution.cells, strict=True):
        if "### BEGIN SOLUTION" in r_cell.source:
            s_cell.source = r_cell.source.replace(
                "h[..., c : c + height, c : c + width]", "h[..., :height, :width]"
            )
    nbformat.write(nb, student)
    report = check_exercise(student)
    assert [c.passed for c in report.checks] == [True, False]
    assert "top-left corner (offset 0)" in report.checks[1].message
