"""The checkers of exercise 02 (convolutionalize a classifier) have teeth.

Right answers pass; typical wrong answers fail with a :class:`CheckFailure` that names the
mistake; answers of the wrong type fail with a message that says what was expected. The
students' answers below are written here, independently of the checkers' own mistake list.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from fcn_course.checks import CheckFailure, check_convolutionalize, check_linear_to_conv
from fcn_course.models import convolutionalize, linear_to_conv

# ---------------------------------------------------------------- linear_to_conv answers


def _l2c(linear, in_channels, kernel_size, *, order="right", bias=True, padding=0):
    """A student's linear_to_conv; ``order`` picks how the weight is unflattened."""
    out, k, c = linear.out_features, kernel_size, in_channels
    w = linear.weight.detach()
    weights = {
        "right": lambda: w.reshape(out, c, k, k),
        "channels_last": lambda: w.reshape(out, k, k, c).permute(0, 3, 1, 2),
        "hw_swapped": lambda: w.reshape(out, c, k, k).permute(0, 1, 3, 2),
        "transposed": lambda: w.T.reshape(out, c, k, k),
    }
    conv = nn.Conv2d(c, out, k, padding=padding, bias=bias and linear.bias is not None)
    conv.weight.data = weights[order]().clone()
    if conv.bias is not None:
        conv.bias.data = linear.bias.detach().clone()
    return conv


def l2c_right(linear, in_channels, kernel_size):
    return _l2c(linear, in_channels, kernel_size)


def l2c_channels_last(linear, in_channels, kernel_size):
    return _l2c(linear, in_channels, kernel_size, order="channels_last")


def l2c_hw_swapped(linear, in_channels, kernel_size):
    return _l2c(linear, in_channels, kernel_size, order="hw_swapped")


def l2c_transposed(linear, in_channels, kernel_size):
    return _l2c(linear, in_channels, kernel_size, order="transposed")


def l2c_no_bias(linear, in_channels, kernel_size):
    return _l2c(linear, in_channels, kernel_size, bias=False)


def l2c_padded(linear, in_channels, kernel_size):
    return _l2c(linear, in_channels, kernel_size, padding=kernel_size // 2)


def l2c_one_by_one(linear, in_channels, kernel_size):
    conv = nn.Conv2d(linear.in_features, linear.out_features, 1)
    conv.weight.data = linear.weight.detach()[:, :, None, None].clone()
    conv.bias.data = linear.bias.detach().clone()
    return conv


def l2c_bias_not_copied(linear, in_channels, kernel_size):
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size)
    conv.weight.data = linear.weight.detach().reshape(conv.weight.shape).clone()
    return conv


def l2c_returns_weight(linear, in_channels, kernel_size):
    return l2c_right(linear, in_channels, kernel_size).weight.detach()


def l2c_returns_linear(linear, in_channels, kernel_size):
    return linear


def test_linear_to_conv_reference_and_a_right_answer_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_linear_to_conv(linear_to_conv)
    check_linear_to_conv(l2c_right)
    assert capsys.readouterr().out.splitlines() == [
        "PASS linear_to_conv: all 6 cases agree with fcn_course.models.linear_to_conv"
    ] * 2


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (l2c_channels_last, r"case 1 of 6(?s:.*)weight: values differ(?s:.*)"
                            r"diagnosis: .*unflattened channels-last, as \(out, h, w, C\)"),
        (l2c_hw_swapped, r"case 1 of 6(?s:.*)diagnosis: .*rows and columns are swapped"),
        (l2c_transposed, r"case 1 of 6(?s:.*)diagnosis: .*transposed before reshaping"),
        (l2c_no_bias, r"case 1 of 6(?s:.*)bias: expected True, got False\n"
                      r"diagnosis: .*the bias was dropped"),
        (l2c_one_by_one, r"in_channels: expected 2, got 18(?s:.*)kernel_size: expected \(3, 3\), "
                         r"got \(1, 1\)(?s:.*)diagnosis: .*1x1 convolution over C\*k\*k"),
        (l2c_padded, r"padding: expected \(0, 0\), got \(1, 1\)\n"
                     r"diagnosis: .*the convolution is padded"),
    ],
)
def test_typical_linear_to_conv_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_linear_to_conv(student)


def test_a_bias_left_random_is_reported_with_the_general_hint() -> None:
    with pytest.raises(CheckFailure, match=r"(?s)bias: values differ.*hint: build nn.Conv2d") as e:
        check_linear_to_conv(l2c_bias_not_copied)
    assert "diagnosis" not in str(e.value)


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (l2c_returns_weight, r"returned a torch.float32 tensor of shape \(4, 2, 3, 3\) on case 1 "
                             r"of 6.*; expected an nn.Conv2d\nhint: return the convolution"),
        (l2c_returns_linear, r"returned Linear .*; expected an nn.Conv2d"),
    ],
)
def test_linear_to_conv_of_the_wrong_type_fails_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_linear_to_conv(student)


# ---------------------------------------------------------------- convolutionalize answers


def _fcn(classifier, *, l2c=l2c_right, fc6_kernel=None, relu=True, fc8=True, eval_mode=True,
         fc6_padding=0):
    """A student's convolutionalize: an nn.Sequential of the features and the fc convolutions."""
    head = classifier.classifier
    c, k = classifier.feature_info[-1]["channels"], classifier.pool5_size
    if fc6_kernel == 1:  # the flattened pool5 vector taken as the channels of a 1x1 map
        fc6 = l2c(head.fc6, head.fc6.in_features, 1)
    else:
        fc6 = l2c(head.fc6, c, k)
        fc6.padding = (fc6_padding, fc6_padding)
    layers = [copy.deepcopy(classifier.features), fc6, nn.ReLU(), nn.Dropout(0.5),
              l2c(head.fc7, head.fc7.in_features, 1), nn.ReLU(), nn.Dropout(0.5)]
    if not relu:
        layers = [m for m in layers if not isinstance(m, nn.ReLU)]
    if fc8:
        layers.append(l2c(head.fc8, head.fc8.in_features, 1))
    model = nn.Sequential(*layers)
    return model.eval() if eval_mode else model


class StudentFCN(nn.Module):
    """A right answer written as a class rather than an nn.Sequential."""

    def __init__(self, classifier):
        super().__init__()
        head = classifier.classifier
        c, k = classifier.feature_info[-1]["channels"], classifier.pool5_size
        self.features = copy.deepcopy(classifier.features)
        self.fc6 = l2c_right(head.fc6, c, k)
        self.fc7 = l2c_right(head.fc7, head.fc7.in_features, 1)
        self.fc8 = l2c_right(head.fc8, head.fc8.in_features, 1)

    def forward(self, x):
        h = torch.relu(self.fc6(self.features(x)))
        return self.fc8(torch.relu(self.fc7(h)))


def fcn_right(classifier):
    return _fcn(classifier)


def fcn_class(classifier):
    return StudentFCN(classifier).train(classifier.training)


def fcn_training_mode(classifier):
    return _fcn(classifier, eval_mode=False)


def fcn_channels_last(classifier):
    return _fcn(classifier, l2c=l2c_channels_last)


def fcn_hw_swapped(classifier):
    return _fcn(classifier, l2c=l2c_hw_swapped)


def fcn_no_bias(classifier):
    return _fcn(classifier, l2c=l2c_no_bias)


def fcn_bias_not_copied(classifier):
    return _fcn(classifier, l2c=l2c_bias_not_copied)


def fcn_fc6_one_by_one(classifier):
    return _fcn(classifier, fc6_kernel=1)


def fcn_fc6_padded(classifier):
    return _fcn(classifier, fc6_padding=1)


def fcn_all_kernels_k(classifier):
    head = classifier.classifier
    k = classifier.pool5_size
    model = _fcn(classifier)
    model[4] = l2c_right(head.fc7, head.fc7.in_features // (k * k), k)
    return model.eval()


def fcn_no_relu(classifier):
    return _fcn(classifier, relu=False)


def fcn_without_fc8(classifier):
    return _fcn(classifier, fc8=False)


def fcn_in_place(classifier):
    head = classifier.classifier
    c, k = classifier.feature_info[-1]["channels"], classifier.pool5_size
    head.fc6 = l2c_right(head.fc6, c, k)
    head.fc7 = l2c_right(head.fc7, head.fc7.in_features, 1)
    head.fc8 = l2c_right(head.fc8, head.fc8.in_features, 1)
    return nn.Sequential(classifier.features, head).eval()


def test_convolutionalize_reference_and_right_answers_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_convolutionalize(convolutionalize)
    check_convolutionalize(fcn_right)
    check_convolutionalize(fcn_class)
    assert capsys.readouterr().out.splitlines() == [
        "PASS convolutionalize: all 3 cases agree with fcn_course.models.convolutionalize"
    ] * 3


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (fcn_training_mode, r"case 1 of 3(?s:.*)module returned is in training mode \(in "
                            r"training mode: the module itself, 1, 2, 3\)(?s:.*)"
                            r"diagnosis: .*the result is left in training mode"),
        (fcn_channels_last, r"own input x of shape \(2, 3, 64, 64\)\n  score map: values differ"
                            r"(?s:.*)diagnosis: .*fc6's weight was unflattened channels-last"),
        (fcn_hw_swapped, r"(?s)score map: values differ.*diagnosis: .*rows and columns of fc6's "
                         r"kernel are swapped"),
        (fcn_no_bias, r"(?s)score map: values differ.*diagnosis: .*the biases were dropped"),
        (fcn_bias_not_copied, r"(?s)diagnosis: .*the biases were not copied from the fc layers"),
        (fcn_fc6_one_by_one, r"(?s)own input.*raised RuntimeError.*diagnosis: .*fc6's kernel is "
                             r"not the size of the pool5 map"),
        (fcn_fc6_padded, r"score map: expected shape \(2, 3, 1, 1\), got shape \(2, 3, 3, 3\)"
                         r"(?s:.*)diagnosis: .*the fc convolutions are padded"),
        (fcn_all_kernels_k, r"(?s)raised RuntimeError.*diagnosis: .*fc7 or fc8 is not a 1x1"),
        (fcn_no_relu, r"(?s)score map: values differ.*diagnosis: .*ReLUs after fc6 and fc7"),
        (fcn_without_fc8, r"expected shape \(2, 3, 1, 1\), got shape \(2, 16, 1, 1\)"
                          r"(?s:.*)diagnosis: .*fc8 was left out"),
        (fcn_in_place, r"(?s)classifier given to convolutionalize was modified: its "
                       r"classifier.fc6.weight changed.*diagnosis: .*changed in place"),
    ],
)
def test_typical_convolutionalize_mistakes_are_named(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_convolutionalize(student)


def test_a_mistake_that_shows_only_on_a_larger_input_is_caught() -> None:
    """A 'network' that flattens pool5 works on the classifier's size and nowhere else."""

    class Flattening(nn.Module):
        def __init__(self, classifier):
            super().__init__()
            self.classifier = copy.deepcopy(classifier)

        def forward(self, x):
            h = self.classifier.features(x).flatten(1)
            return self.classifier.classifier(h)[:, :, None, None]

    with pytest.raises(CheckFailure, match=r"(?s)on a larger input x of shape \(1, 3, 96, 128\)"
                                           r".*raised RuntimeError.*diagnosis: .*fully "
                                           r"connected layers were not converted"):
        check_convolutionalize(lambda classifier: Flattening(classifier).eval())


@pytest.mark.parametrize(
    ("student", "match"),
    [
        (lambda clf: None, r"returned NoneType None on case 1 of 3.*; expected an nn.Module"),
        (lambda clf: convolutionalize(clf)(torch.zeros(1, 3, 64, 64)),
         r"returned a torch.float32 tensor of shape \(1, 3, 1, 1\)(?s:.*)expected an nn.Module"
         r"(?s:.*)\nhint: return the network itself, not its output"),
        (lambda clf: nn.Sequential(convolutionalize(clf), nn.Flatten()).eval(),
         r"expected shape \(2, 3, 1, 1\), got shape \(2, 3\)"),
    ],
)
def test_convolutionalize_of_the_wrong_type_fails_clearly(student, match: str) -> None:
    with pytest.raises(CheckFailure, match=match):
        check_convolutionalize(student)


def test_a_module_returning_a_tuple_fails_clearly() -> None:
    class Pair(nn.Module):
        def __init__(self, classifier):
            super().__init__()
            self.net = convolutionalize(classifier)

        def forward(self, x):
            return self.net(x), x

    with pytest.raises(CheckFailure, match=r"score map: expected a torch.Tensor, got tuple"):
        check_convolutionalize(lambda clf: Pair(clf).eval())


def test_unimplemented_crashing_and_uncalled_answers() -> None:
    def stub(*args):
        raise NotImplementedError("view the weight as (out, C, k, k)")

    def crashes(linear, in_channels, kernel_size):
        return linear.weight.view(linear.out_features, in_channels, 5, 5)

    with pytest.raises(CheckFailure, match=r"not implemented yet(?s:.*)view the weight as"):
        check_linear_to_conv(stub)
    with pytest.raises(CheckFailure, match=r"not implemented yet"):
        check_convolutionalize(stub)
    with pytest.raises(CheckFailure, match=r"linear_to_conv raised RuntimeError on case 1 of 6"):
        check_linear_to_conv(crashes)
    with pytest.raises(TypeError, match="pass the function itself"):
        check_linear_to_conv(torch.zeros(3))
    with pytest.raises(TypeError, match="pass the function itself"):
        check_convolutionalize(None)


def test_checks_leave_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    check_linear_to_conv(linear_to_conv)
    check_convolutionalize(fcn_right)
    assert torch.equal(torch.rand(4), expected)
