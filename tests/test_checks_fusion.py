"""The skip-fusion checkers have teeth: right heads pass, typical wrong heads are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fcn_course.checks import CheckFailure, check_fcn8s_fusion, check_fcn16s_fusion

# ---- answers a student might write (independent of the checker's own list of mistakes)


def _window(x, top, left, h, w):
    return x[:, :, top : top + h, left : left + w]


def student8_right(model, score_fr, pool4, pool3, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    up = model.upscore_pool4(fused)
    fused = s3 + _window(up, *model.crop_offsets["upscore_pool4"], *s3.shape[2:])
    return _window(model.upscore8(fused), *model.crop_offsets["upscore8"], *size)


def student16_right(model, score_fr, pool4, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    return _window(model.upscore16(fused), *model.crop_offsets["upscore16"], *size)


def student8_without_pool3(model, score_fr, pool4, pool3, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    up = model.upscore_pool4(fused)
    coarse = _window(up, *model.crop_offsets["upscore_pool4"], *pool3.shape[2:])
    return _window(model.upscore8(coarse), *model.crop_offsets["upscore8"], *size)


def student8_without_pool4(model, score_fr, pool4, pool3, size):
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    up = model.upscore2(score_fr)
    coarse = _window(up, *model.crop_offsets["upscore2"], *pool4.shape[2:])
    up = model.upscore_pool4(coarse)
    fused = s3 + _window(up, *model.crop_offsets["upscore_pool4"], *s3.shape[2:])
    return _window(model.upscore8(fused), *model.crop_offsets["upscore8"], *size)


def _student8_offsets(model, score_fr, pool4, pool3, size, offsets):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *offsets(up, s4.shape[2:], "upscore2"), *s4.shape[2:])
    up = model.upscore_pool4(fused)
    fused = s3 + _window(up, *offsets(up, s3.shape[2:], "upscore_pool4"), *s3.shape[2:])
    up = model.upscore8(fused)
    return _window(up, *offsets(up, size, "upscore8"), *size)


def student8_top_left_crops(model, score_fr, pool4, pool3, size):
    return _student8_offsets(model, score_fr, pool4, pool3, size, lambda up, hw, name: (0, 0))


def student8_centre_crops(model, score_fr, pool4, pool3, size):
    def centre(up, hw, name):
        return (up.shape[2] - hw[0]) // 2, (up.shape[3] - hw[1]) // 2

    return _student8_offsets(model, score_fr, pool4, pool3, size, centre)


def student8_one_offset(model, score_fr, pool4, pool3, size):
    offset = model.crop_offsets["upscore2"]
    return _student8_offsets(model, score_fr, pool4, pool3, size, lambda up, hw, name: offset)


def _student8_scaled(model, score_fr, pool4, pool3, size, scale4, scale3):
    s4 = model.score_pool4(scale4 * pool4)
    s3 = model.score_pool3(scale3 * pool3)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    up = model.upscore_pool4(fused)
    fused = s3 + _window(up, *model.crop_offsets["upscore_pool4"], *s3.shape[2:])
    return _window(model.upscore8(fused), *model.crop_offsets["upscore8"], *size)


def student8_unscaled(model, score_fr, pool4, pool3, size):
    return _student8_scaled(model, score_fr, pool4, pool3, size, 1, 1)


def student8_paper_scales_always(model, score_fr, pool4, pool3, size):
    return _student8_scaled(model, score_fr, pool4, pool3, size, 0.01, 0.0001)


def student8_interpolate(model, score_fr, pool4, pool3, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    fused = s4 + F.interpolate(score_fr, size=s4.shape[2:], mode="bilinear")
    fused = s3 + F.interpolate(fused, size=s3.shape[2:], mode="bilinear")
    return F.interpolate(fused, size=size, mode="bilinear")


def student8_upscore2_twice(model, score_fr, pool4, pool3, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    up = model.upscore2(fused)
    fused = s3 + _window(up, *model.crop_offsets["upscore_pool4"], *s3.shape[2:])
    return _window(model.upscore8(fused), *model.crop_offsets["upscore8"], *size)


def student8_concatenates(model, score_fr, pool4, pool3, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    up = model.upscore2(score_fr)
    fused = torch.cat([_window(up, *model.crop_offsets["upscore2"], *s4.shape[2:]), s4], dim=1)
    up = model.upscore_pool4(fused)
    fused = torch.cat([_window(up, *model.crop_offsets["upscore_pool4"], *s3.shape[2:]), s3], 1)
    return _window(model.upscore8(fused), *model.crop_offsets["upscore8"], *size)


def student8_fuses_before_upsampling(model, score_fr, pool4, pool3, size):
    fused = model.upscore2(score_fr + model.score_pool4(model.scale_pool4 * pool4))
    fused = model.upscore_pool4(fused + model.score_pool3(model.scale_pool3 * pool3))
    return _window(model.upscore8(fused), *model.crop_offsets["upscore8"], *size)


def student8_no_final_crop(model, score_fr, pool4, pool3, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    s3 = model.score_pool3(model.scale_pool3 * pool3)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    up = model.upscore_pool4(fused)
    fused = s3 + _window(up, *model.crop_offsets["upscore_pool4"], *s3.shape[2:])
    return model.upscore8(fused)


def student8_drops_batch(model, score_fr, pool4, pool3, size):
    return student8_right(model, score_fr, pool4, pool3, size)[0]


def student8_numpy(model, score_fr, pool4, pool3, size):
    return student8_right(model, score_fr, pool4, pool3, size).numpy()


def student8_forgets_return(model, score_fr, pool4, pool3, size):
    student8_right(model, score_fr, pool4, pool3, size)


def student16_without_pool4(model, score_fr, pool4, size):
    up = model.upscore2(score_fr)
    coarse = _window(up, *model.crop_offsets["upscore2"], *pool4.shape[2:])
    return _window(model.upscore16(coarse), *model.crop_offsets["upscore16"], *size)


def student16_centre_crops(model, score_fr, pool4, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    up = model.upscore2(score_fr)
    top, left = (up.shape[2] - s4.shape[2]) // 2, (up.shape[3] - s4.shape[3]) // 2
    up = model.upscore16(s4 + _window(up, top, left, *s4.shape[2:]))
    top, left = (up.shape[2] - size[0]) // 2, (up.shape[3] - size[1]) // 2
    return _window(up, top, left, *size)


def student16_unscaled(model, score_fr, pool4, size):
    s4 = model.score_pool4(pool4)
    up = model.upscore2(score_fr)
    fused = s4 + _window(up, *model.crop_offsets["upscore2"], *s4.shape[2:])
    return _window(model.upscore16(fused), *model.crop_offsets["upscore16"], *size)


def student16_interpolate(model, score_fr, pool4, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    fused = s4 + F.interpolate(score_fr, size=s4.shape[2:], mode="bilinear", align_corners=True)
    return F.interpolate(fused, size=size, mode="bilinear", align_corners=True)


def student16_concatenates(model, score_fr, pool4, size):
    s4 = model.score_pool4(model.scale_pool4 * pool4)
    up = model.upscore2(score_fr)
    fused = torch.cat([_window(up, *model.crop_offsets["upscore2"], *s4.shape[2:]), s4], dim=1)
    return _window(model.upscore16(fused), *model.crop_offsets["upscore16"], *size)


# ---- the tests


def test_right_answers_pass_with_one_stable_line(capsys: pytest.CaptureFixture[str]) -> None:
    check_fcn8s_fusion(student8_right)
    check_fcn16s_fusion(student16_right)
    assert capsys.readouterr().out.splitlines() == [
        "PASS fuse_fcn8s: all 5 cases agree with fcn_course.models.FCN8s.forward",
        "PASS fuse_fcn16s: all 5 cases agree with fcn_course.models.FCN16s.forward",
    ]


def test_checker_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    check_fcn16s_fusion(student16_right)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (student8_without_pool3, r"case 1 of 5(?s:.*)diagnosis: .*pool3 branch is missing"),
        (student8_without_pool4, r"case 1 of 5(?s:.*)diagnosis: .*pool4 branch is missing"),
        (student8_top_left_crops, r"case 1 of 5(?s:.*)diagnosis: .*offset 0 \(the top-left"),
        # 64x64 leaves even margins, so a centre crop is right there; 97x131 tells them apart
        (student8_centre_crops, r"case 2 of 5: fuse_fcn8s\(model, score_fr, pool4, pool3, "
                                r"size=\(97, 131\)\)(?s:.*)diagnosis: .*centre crops"),
        (student8_one_offset, r"case 1 of 5(?s:.*)every crop uses upscore2's offset"),
        (student8_unscaled, r"case 4 of 5: .*skip_scaling=True(?s:.*)"
                            r"diagnosis: .*skip scaling is missing"),
        (student8_paper_scales_always, r"case 1 of 5(?s:.*)paper's skip scales are applied"),
        (student8_interpolate, r"diagnosis: .*F\.interpolate is used instead"),
        (student8_upscore2_twice, r"diagnosis: .*upscore2 is used for both 2x upsamplings"),
    ],
)
def test_typical_fcn8s_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match) as failure:
        check_fcn8s_fusion(student)
    assert str(failure.value).count("diagnosis:") == 1


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (student8_concatenates, r"raised RuntimeError on case 1 of 5(?s:.*)to have 4 channels, "
                                r"but got 8(?s:.*)diagnosis: .*concatenated \(torch\.cat\)"),
        (student8_fuses_before_upsampling, r"raised RuntimeError(?s:.*)diagnosis: .*score maps "
                                           r"of different sizes were added"),
    ],
)
def test_mistakes_that_cannot_run_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_fcn8s_fusion(student)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (student8_no_final_crop, r"expected shape \(1, 4, 64, 64\), got shape \(1, 4, 72, 72\)"
                                 r"(?s:.*)diagnosis: .*final crop to the input size is missing"),
        (student8_drops_batch, r"expected shape \(1, 4, 64, 64\), got shape \(4, 64, 64\)"
                               r"(?s:.*)hint: start from score_fr"),
        (student8_numpy, r"expected a torch.Tensor, got ndarray"),
        (student8_forgets_return, r"expected a torch.Tensor, got NoneType"),
    ],
)
def test_wrong_shapes_and_types_fail_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_fcn8s_fusion(student)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (student16_without_pool4, r"case 1 of 5: fuse_fcn16s\(model, score_fr, pool4, "
                                  r"size=\(64, 64\)\)(?s:.*)pool4 branch is missing"),
        (student16_centre_crops, r"case 2 of 5(?s:.*)diagnosis: .*centre crops"),
        (student16_unscaled, r"case 4 of 5(?s:.*)diagnosis: .*skip scaling is missing"),
        (student16_interpolate, r"diagnosis: .*F\.interpolate is used instead"),
        (student16_concatenates, r"diagnosis: .*concatenated \(torch\.cat\)"),
    ],
)
def test_typical_fcn16s_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_fcn16s_fusion(student)


def test_unimplemented_crashing_and_uncallable_answers() -> None:
    def stub(model, score_fr, pool4, pool3, size):
        raise NotImplementedError("add the pool3 scores")

    def typo(model, score_fr, pool4, pool3, size):
        return model.crop_offsets["upscore4"]

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)add the pool3 scores"):
        check_fcn8s_fusion(stub)
    with pytest.raises(CheckFailure, match=r"raised KeyError on case 1 of 5") as failure:
        check_fcn8s_fusion(typo)
    assert "diagnosis" not in str(failure.value)
    with pytest.raises(TypeError, match="pass the function itself"):
        check_fcn8s_fusion(np.zeros(3))
