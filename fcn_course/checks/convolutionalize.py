"""Checkers for the exercise on convolutionalizing a classifier.

The chapter "From classifier to fully convolutional network" explains what is checked: a fully
connected layer reading a ``C x k x k`` map is a ``k x k`` convolution with ``C`` input
channels (its weight viewed channel-major), the ones after it are ``1 x 1`` convolutions, and
the converted network reproduces the classifier's logits on its own input size and emits a
score map on a larger one.

Unlike the checkers of :mod:`fcn_course.checks.upsample`, these compare modules, so each case
compares the layers' shapes first (kernel, padding, bias), then their weights, then what they
compute on a seeded input.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from fcn_course._validation import describe
from fcn_course.checks._core import CheckFailure, Mistake, _equal, format_value, verdict_line
from fcn_course.models.convolutionalize import convolutionalize, linear_to_conv
from fcn_course.models.vgg import CourseVGG, course_vgg

__all__ = ["check_convolutionalize", "check_linear_to_conv"]

_ATOL = 1e-5
_RTOL = 1e-4


# ----------------------------------------------------------------------------- shared helpers


@contextmanager
def _private_rng(seed: int) -> Iterator[None]:
    """Seed the global RNG for the block and restore it after, so a check changes nothing."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _call_student(func_name: str, student: Callable[..., Any], args: tuple[Any, ...],
                  where: str, general_hint: str) -> Any:
    """Call the student's function; a stub or a crash becomes a :class:`CheckFailure`."""
    __tracebackhide__ = True
    try:
        return student(*args)
    except NotImplementedError as err:
        hint = f"\nhint: {err}" if str(err) else ""
        raise CheckFailure(
            f"{func_name} is not implemented yet: replace the `raise NotImplementedError(...)`"
            f" line in its cell with your code, run that cell, then run this check again.{hint}"
        ) from None
    except Exception as err:
        raise CheckFailure(
            f"{func_name} raised {type(err).__name__} on {where}:\n  {err}\nhint: {general_hint}"
        ) from err


def _require_callable(func_name: str, student: Any) -> None:
    if not callable(student):
        raise TypeError(
            f"check of {func_name}: expected your function {func_name} (a callable), got "
            f"{type(student).__name__}; pass the function itself, without calling it"
        )


class _Diagnosis(NamedTuple):
    """A typical mistake recognised from the student's module rather than from its output."""

    name: str
    hint: str


def _failure(func_name: str, where: str, details: Sequence[str],
             diagnosis: Mistake | _Diagnosis | None, general_hint: str) -> CheckFailure:
    """The message of a mismatch, in the form :func:`fcn_course.checks._core.run_checks` uses."""
    lines = [f"{func_name} does not match the reference on {where}"]
    lines += [f"  {d}" for d in details]
    if diagnosis is not None:
        lines.append(f"diagnosis: this is a typical mistake: {diagnosis.name}.")
        lines.append("hint: " + diagnosis.hint)
    elif general_hint:
        lines.append("hint: " + general_hint)
    return CheckFailure("\n".join(x if len(x) <= 400 else x[:397] + "..." for x in lines))


def _tensor_details(label: str, expected: Any, got: Any) -> list[str]:
    """Lines saying how ``got`` differs from the tensor ``expected``; empty when they agree."""
    ok, detail = _equal(expected, got, _ATOL, _RTOL)
    if ok:
        return []
    lines = [f"{label}: {detail}"]
    if isinstance(got, torch.Tensor):
        lines += [f"  expected: {format_value(expected, short=True)}",
                  f"  got:      {format_value(got, short=True)}"]
    return lines


# ----------------------------------------------------------------------------- linear_to_conv


def _conv_layout(conv: nn.Conv2d) -> dict[str, Any]:
    """What fixes a convolution's output shape, besides its weights."""
    return {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": tuple(conv.kernel_size),
        "stride": tuple(conv.stride),
        "padding": conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
        "dilation": tuple(conv.dilation),
        "groups": conv.groups,
        "bias": conv.bias is not None,
    }


def _conv_differences(expected: nn.Conv2d, got: nn.Conv2d, x: torch.Tensor | None) -> list[str]:
    """How the convolution ``got`` differs from ``expected``: layout, then weights, then the
    output on ``x`` (if given: a subclass may compute something else with the same weights)."""
    want, have = _conv_layout(expected), _conv_layout(got)
    layout = [f"{key}: expected {want[key]!r}, got {have[key]!r}"
              for key in want if want[key] != have[key]]
    if layout:
        return layout
    details = _tensor_details("weight", expected.weight, got.weight)
    if not details and expected.bias is not None:
        details = _tensor_details("bias", expected.bias, got.bias)
    if details or x is None:
        return details
    with torch.no_grad():
        return _tensor_details(f"output on x of shape {tuple(x.shape)}", expected(x), got(x))


class _LinearCase(NamedTuple):
    in_channels: int
    kernel_size: int
    out_features: int
    bias: bool = True

    def build(self, seed: int) -> tuple[nn.Linear, torch.Tensor]:
        """A seeded ``nn.Linear`` reading ``(C, k, k)`` and an input a little larger than k."""
        g = torch.Generator().manual_seed(seed)
        c, k = self.in_channels, self.kernel_size
        linear = nn.Linear(c * k * k, self.out_features, bias=self.bias)
        with torch.no_grad():
            linear.weight.normal_(generator=g)
            if linear.bias is not None:
                linear.bias.normal_(generator=g)
        x = torch.randn(2, c, k + 2, k + 3, generator=g)  # (N, C, H, W): a 3x4 map of windows
        return linear, x


# fc6-like layers (k > 1, square maps of odd and even side, VGG16's 7), fc7/fc8-like ones
# (k = 1), one without a bias. Weights and biases are N(0, 1): nothing is zero by accident.
_LINEAR_CASES = [
    _LinearCase(2, 3, 4),
    _LinearCase(3, 2, 5),
    _LinearCase(4, 7, 3),
    _LinearCase(8, 1, 6),
    _LinearCase(5, 1, 2),
    _LinearCase(3, 3, 4, bias=False),
]


def _conv_like(linear: nn.Linear, in_channels: int, kernel_size: int, weight: torch.Tensor,
               *, padding: int = 0, bias: bool = True) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, padding=padding,
                     bias=bias and linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if conv.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def _l2c_channels_last(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    k = kernel_size
    weight = linear.weight.detach().reshape(-1, k, k, in_channels).permute(0, 3, 1, 2)
    return _conv_like(linear, in_channels, k, weight)


def _l2c_rows_columns_swapped(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    k = kernel_size
    weight = linear.weight.detach().reshape(-1, in_channels, k, k).transpose(2, 3)
    return _conv_like(linear, in_channels, k, weight)


def _l2c_weight_transposed(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    k = kernel_size
    weight = linear.weight.detach().t().reshape(-1, in_channels, k, k)
    return _conv_like(linear, in_channels, k, weight)


def _l2c_no_bias(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    k = kernel_size
    weight = linear.weight.detach().reshape(-1, in_channels, k, k)
    return _conv_like(linear, in_channels, k, weight, bias=False)


def _l2c_one_by_one(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    weight = linear.weight.detach().reshape(linear.out_features, linear.in_features, 1, 1)
    return _conv_like(linear, linear.in_features, 1, weight)


def _l2c_same_padding(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    k = kernel_size
    weight = linear.weight.detach().reshape(-1, in_channels, k, k)
    return _conv_like(linear, in_channels, k, weight, padding=k // 2)


_LAYOUT_HINT = (
    "nn.Linear reads its input flattened from (C, h, w) in channel-major order (torch.flatten "
    "of an (N, C, h, w) map), so linear.weight (out, C*h*w) is already in the order of a conv "
    "weight (out, C, h, w): linear.weight.view(out, C, k, k), with no permute or transpose."
)

_LINEAR_MISTAKES = [
    Mistake(
        "the weight was unflattened channels-last, as (out, h, w, C)",
        _l2c_channels_last,
        _LAYOUT_HINT,
    ),
    Mistake(
        "the kernel's rows and columns are swapped (h and w transposed)",
        _l2c_rows_columns_swapped,
        _LAYOUT_HINT,
    ),
    Mistake(
        "the weight was transposed before reshaping",
        _l2c_weight_transposed,
        "nn.Linear stores its weight as (out_features, in_features), one row per output: it "
        "needs no .t() before becoming (out_features, C, k, k).",
    ),
    Mistake(
        "the bias was dropped",
        _l2c_no_bias,
        "a fully connected layer adds its bias to every output; create the convolution with "
        "bias=linear.bias is not None and copy linear.bias into conv.bias.",
    ),
    Mistake(
        "the layer became a 1x1 convolution over C*k*k channels",
        _l2c_one_by_one,
        "the layer reads a (C, k, k) map, so its convolution has in_channels=C and a k x k "
        "kernel; only a layer that reads a vector (k = 1), like fc7 and fc8, is 1x1.",
    ),
    Mistake(
        "the convolution is padded",
        _l2c_same_padding,
        "a fully connected layer sees exactly one k x k window and never zeros beyond it: the "
        "convolution takes padding=0, so a k x k map gives a 1x1 output.",
    ),
]

_LINEAR_HINT = (
    "build nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=linear.bias is not "
    "None) without padding, and copy linear.weight viewed as (out, in_channels, k, k) and "
    "linear.bias into it under torch.no_grad()."
)


def _same_conv(a: Any, b: Any) -> bool:
    """Whether two convolutions have the same layout and parameters."""
    try:
        return isinstance(a, nn.Conv2d) and isinstance(b, nn.Conv2d) and not (
            _conv_differences(a, b, None))
    except Exception:  # a mistake that cannot be built for this case never matches
        return False


def check_linear_to_conv(student: Callable[[nn.Linear, int, int], nn.Conv2d]) -> None:
    """Check a student's ``linear_to_conv(linear, in_channels, kernel_size) -> nn.Conv2d``.

    The student's convolution is compared with :func:`fcn_course.models.linear_to_conv` on
    seeded layers: its layout (channels, kernel, padding, bias), its weights and its output on
    an input with several windows. Chapter "From classifier to fully convolutional network".
    """
    __tracebackhide__ = True
    name = "linear_to_conv"
    _require_callable(name, student)
    with _private_rng(0):
        for number, case in enumerate(_LINEAR_CASES, start=1):
            linear, x = case.build(number)
            c, k = case.in_channels, case.kernel_size
            where = (f"case {number} of {len(_LINEAR_CASES)}: {name}({format_value(linear)}, "
                     f"in_channels={c}, kernel_size={k})")
            expected = linear_to_conv(linear, c, k)
            got = _call_student(name, student, (copy.deepcopy(linear), c, k), where, _LINEAR_HINT)
            if not isinstance(got, nn.Conv2d):
                raise CheckFailure(
                    f"{name} returned {describe(got)} on {where}; expected an nn.Conv2d\n"
                    f"hint: return the convolution module itself, not its weight or output: "
                    f"{_LINEAR_HINT}"
                )
            details = _conv_differences(expected, got, x)
            if details:
                known = [m for m in _LINEAR_MISTAKES
                         if _same_conv(m.implementation(linear, c, k), got)]
                raise _failure(name, where, details, known[0] if known else None, _LINEAR_HINT)
    print(verdict_line(name, len(_LINEAR_CASES), "fcn_course.models.linear_to_conv"))


# ----------------------------------------------------------------------------- convolutionalize


@dataclass(frozen=True)
class _ModelCase:
    """A small seeded course classifier and the larger input its score map is checked on."""

    input_size: int
    widths: tuple[int, int, int, int, int]
    fc_width: int
    num_classes: int
    batch_norm: bool
    larger: tuple[int, int]

    def label(self) -> str:
        return (f"course_vgg(num_classes={self.num_classes}, input_size={self.input_size}, "
                f"widths={self.widths}, fc_width={self.fc_width}, "
                f"batch_norm={self.batch_norm}).eval()")

    def build(self, seed: int) -> tuple[CourseVGG, torch.Tensor, torch.Tensor]:
        """The classifier (eval mode, every weight, bias and statistic random, none zero), an
        input batch of its own size and a larger image."""
        # The fc convolutions are told apart from the features by their widths (diagnosis).
        assert self.fc_width not in self.widths and self.num_classes not in self.widths
        g = torch.Generator().manual_seed(seed)
        classifier = course_vgg(
            num_classes=self.num_classes, input_size=self.input_size, widths=self.widths,
            fc_width=self.fc_width, batch_norm=self.batch_norm,
        )
        with torch.no_grad():
            for m in classifier.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    fan_in = m.weight[0].numel()
                    m.weight.normal_(0, (2 / fan_in) ** 0.5, generator=g)  # He: scale is kept
                    m.bias.normal_(0, 0.5, generator=g)
                elif isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.normal_(0, 0.1, generator=g)
                    m.running_mean.normal_(0, 0.1, generator=g)
                    m.running_var.uniform_(0.5, 1.5, generator=g)
        classifier.eval()
        s = self.input_size
        x = torch.randn(2, 3, s, s, generator=g)  # (N, 3, S, S)
        big = torch.randn(1, 3, *self.larger, generator=g)  # (1, 3, H, W), H, W > S
        return classifier, x, big


# pool5 is 2x2, 3x3 (pools round 72 up: 36, 18, 9, 5, 3) and 1x1 (fc6 is then 1x1 too);
# larger inputs square and not, each giving a score map of several positions.
# fc_width and num_classes differ from every stage width so that the checker can find the
# fc convolutions in whatever module a student builds.
_MODEL_CASES = [
    _ModelCase(64, (4, 4, 8, 8, 8), 16, 3, True, (96, 128)),
    _ModelCase(72, (4, 8, 8, 8, 8), 12, 5, False, (136, 104)),
    _ModelCase(32, (4, 4, 4, 8, 8), 10, 6, True, (64, 96)),
]


def _fc_convs(model: nn.Module, case: _ModelCase) -> list[nn.Conv2d]:
    """The student's fc6, fc7, fc8: the convolutions whose width only fc layers have."""
    widths = (case.fc_width, case.num_classes)
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.out_channels in widths]


def _padded(conv: nn.Conv2d) -> bool:
    return conv.padding == "same" or (
        not isinstance(conv.padding, str) and any(p != 0 for p in conv.padding))


def _bias_not_copied(fcs: list[nn.Conv2d], classifier: CourseVGG) -> bool:
    head = classifier.classifier
    linears = (head.fc6, head.fc7, head.fc8)
    return len(fcs) == 3 and any(
        c.bias is not None and c.bias.shape == f.bias.shape
        and not torch.allclose(c.bias.detach(), f.bias.detach(), atol=_ATOL, rtol=_RTOL)
        for c, f in zip(fcs, linears, strict=True)
    )


#: Mistakes recognised from the fc convolutions of the student's module, checked in order.
_SYMPTOMS: list[tuple[Callable[[list[nn.Conv2d], CourseVGG], bool], _Diagnosis]] = [
    (
        lambda fcs, clf: not fcs,
        _Diagnosis(
            "the fully connected layers were not converted",
            "a network that flattens pool5 and applies nn.Linear layers accepts only the "
            "classifier's input size: replace fc6, fc7 and fc8 by convolutions and never "
            "flatten.",
        ),
    ),
    (
        lambda fcs, clf: bool(fcs) and tuple(fcs[0].kernel_size) != (clf.pool5_size,) * 2,
        _Diagnosis(
            "fc6's kernel is not the size of the pool5 map it reads",
            "fc6 reads the whole C x k x k pool5 map (k = classifier.pool5_size), so it "
            "becomes a k x k convolution with C input channels: linear_to_conv(fc6, C, k).",
        ),
    ),
    (
        lambda fcs, clf: any(tuple(c.kernel_size) != (1, 1) for c in fcs[1:]),
        _Diagnosis(
            "fc7 or fc8 is not a 1x1 convolution",
            "fc7 and fc8 read the vector fc6 computes at one position, so they become 1x1 "
            "convolutions: linear_to_conv(fc7, fc7.in_features, 1), the same for fc8.",
        ),
    ),
    (
        lambda fcs, clf: any(_padded(c) for c in fcs),
        _Diagnosis(
            "the fc convolutions are padded",
            "padding would let fc6 see zeros beyond the pool5 map, which the classifier never "
            "did: convert with padding=0, so the classifier's own input gives a 1x1 score map.",
        ),
    ),
    (
        lambda fcs, clf: any(c.bias is None for c in fcs),
        _Diagnosis(
            "the biases were dropped",
            "each fully connected layer adds a bias: keep it in its convolution "
            "(bias=linear.bias is not None, then copy linear.bias into conv.bias).",
        ),
    ),
    (
        _bias_not_copied,
        _Diagnosis(
            "the biases were not copied from the fc layers",
            "a new nn.Conv2d starts with a random bias: copy linear.bias into conv.bias "
            "under torch.no_grad().",
        ),
    ),
    (
        lambda fcs, clf: len(fcs) == 2,
        _Diagnosis(
            "fc8 was left out",
            "the classifier's logits come from fc8: convert it too, as a 1x1 convolution.",
        ),
    ),
]


def _fcn_from(classifier: CourseVGG, fc6_weight: Callable[[torch.Tensor, int, int], torch.Tensor],
              *, relu: bool = True) -> nn.Module:
    """A converted classifier whose fc6 weight is made by ``fc6_weight(weight, C, k)``."""
    head = classifier.classifier
    c, k = classifier.feature_info[-1]["channels"], classifier.pool5_size
    fc6 = _conv_like(head.fc6, c, k, fc6_weight(head.fc6.weight.detach(), c, k))
    act: Callable[[], nn.Module] = nn.ReLU if relu else nn.Identity
    return nn.Sequential(
        copy.deepcopy(classifier.features), fc6, act(),
        linear_to_conv(head.fc7, head.fc7.in_features, 1), act(),
        linear_to_conv(head.fc8, head.fc8.in_features, 1),
    ).eval()


def _fcn_channels_last(classifier: CourseVGG) -> nn.Module:
    return _fcn_from(classifier, lambda w, c, k: w.reshape(-1, k, k, c).permute(0, 3, 1, 2))


def _fcn_rows_columns_swapped(classifier: CourseVGG) -> nn.Module:
    return _fcn_from(classifier, lambda w, c, k: w.reshape(-1, c, k, k).transpose(2, 3))


def _fcn_no_relu(classifier: CourseVGG) -> nn.Module:
    return _fcn_from(classifier, lambda w, c, k: w.reshape(-1, c, k, k), relu=False)


#: Mistakes recognised by computing the same score map, tried after the symptoms.
_MODEL_MISTAKES = [
    Mistake(
        "fc6's weight was unflattened channels-last, as (out, h, w, C)",
        _fcn_channels_last,
        _LAYOUT_HINT,
    ),
    Mistake(
        "the rows and columns of fc6's kernel are swapped (h and w transposed)",
        _fcn_rows_columns_swapped,
        _LAYOUT_HINT,
    ),
    Mistake(
        "the ReLUs after fc6 and fc7 are missing",
        _fcn_no_relu,
        "the classifier applies ReLU (and dropout, which does nothing in eval mode) after fc6 "
        "and fc7; the converted network must too.",
    ),
]

_MODEL_HINT = (
    "keep a copy of classifier.features, then fc6 as a k x k convolution (k = "
    "classifier.pool5_size, C = classifier.feature_info[-1]['channels']), fc7 and fc8 as 1x1 "
    "convolutions, ReLU and dropout between them as in classifier.classifier, no padding; "
    "return the module in the classifier's mode (model.train(classifier.training))."
)

_MODIFIED = _Diagnosis(
    "the classifier was changed in place",
    "copy what you reuse (copy.deepcopy(classifier.features)) and build new convolutions: "
    "the classifier must keep working as before.",
)

_TRAINING = _Diagnosis(
    "the result is left in training mode",
    "a new nn.Module starts in training mode, where dropout zeroes half of the activations at "
    "random and batch norm uses the batch's statistics; return "
    "model.train(classifier.training), as the reference does.",
)


def _diagnose(student_model: nn.Module, case: _ModelCase, classifier: CourseVGG,
              x: torch.Tensor, got: Any) -> Mistake | _Diagnosis | None:
    """The typical mistake the student's module shows, from its layers or else its output."""
    fcs = _fc_convs(student_model, case)
    for test, diagnosis in _SYMPTOMS:
        if test(fcs, classifier):
            return diagnosis
    if not isinstance(got, torch.Tensor):
        return None
    for mistake in _MODEL_MISTAKES:
        try:
            with torch.no_grad():
                expected = mistake.implementation(classifier)(x)
        except Exception:  # a mistake that cannot run on this case never matches
            continue
        if _equal(expected, got, _ATOL, _RTOL)[0]:
            return mistake
    return None


def _classifier_changed(classifier: nn.Module, before: dict[str, torch.Tensor],
                        x: torch.Tensor, logits: torch.Tensor) -> str:
    """Why ``classifier`` is not what it was before the student's call; empty if unchanged."""
    after = classifier.state_dict()
    if set(after) != set(before):
        return "its layers changed: " + ", ".join(sorted(set(after) ^ set(before))[:4])
    for key, value in before.items():
        if after[key].shape != value.shape or not torch.equal(after[key], value):
            return f"its {key} changed"
    if classifier.training:
        return "it was put in training mode"
    try:
        with torch.no_grad():
            now = classifier(x)
    except Exception as err:
        return f"it no longer runs on its own input ({type(err).__name__}: {err})"
    if not torch.equal(now, logits):
        return "its logits changed"
    return ""


def check_convolutionalize(student: Callable[[nn.Module], nn.Module]) -> None:
    """Check a student's ``convolutionalize(classifier) -> nn.Module``.

    On small seeded course classifiers (:func:`fcn_course.models.course_vgg`, eval mode) the
    student's module must leave the classifier unchanged, come back in eval mode, give the
    logits of :func:`fcn_course.models.convolutionalize` as a ``(N, num_classes, 1, 1)`` map
    on the classifier's own input size, and the same score map on a larger input.
    Chapter "From classifier to fully convolutional network".
    """
    __tracebackhide__ = True
    name = "convolutionalize"
    _require_callable(name, student)
    with _private_rng(0):
        for number, case in enumerate(_MODEL_CASES, start=1):
            classifier, x, big = case.build(number)
            prefix = f"case {number} of {len(_MODEL_CASES)}: {name}({case.label()})"
            reference = convolutionalize(classifier)
            before = {k: v.detach().clone() for k, v in classifier.state_dict().items()}
            with torch.no_grad():
                logits = classifier(x)  # (N, num_classes)
            model = _call_student(name, student, (classifier,), prefix, _MODEL_HINT)
            if not isinstance(model, nn.Module):
                raise CheckFailure(
                    f"{name} returned {describe(model)} on {prefix}; expected an nn.Module "
                    "(for instance an nn.Sequential of the features and the converted fc "
                    f"layers)\nhint: return the network itself, not its output; {_MODEL_HINT}"
                )
            changed = _classifier_changed(classifier, before, x, logits)
            if changed:
                detail = f"the classifier given to {name} was modified: {changed}"
                raise _failure(name, prefix, [detail], _MODIFIED, _MODEL_HINT)
            training = [n or "the module itself" for n, m in model.named_modules() if m.training]
            if training:
                detail = ("the classifier is in eval mode, but the module returned is in "
                          f"training mode (in training mode: {', '.join(training[:4])})")
                raise _failure(name, prefix, [detail], _TRAINING, _MODEL_HINT)
            for label, inputs in (("the classifier's own input", x), ("a larger input", big)):
                where = f"{prefix}, on {label} x of shape {tuple(inputs.shape)}"
                with torch.no_grad():
                    expected = reference(inputs)  # (N, num_classes, h, w)
                    try:
                        got = model(inputs)
                    except Exception as err:
                        detail = f"the module returned raised {type(err).__name__}: {err}"
                        diagnosis = _diagnose(model, case, classifier, inputs, None)
                        raise _failure(name, where, [detail], diagnosis, _MODEL_HINT) from err
                details = _tensor_details("score map", expected, got)
                if details:
                    diagnosis = _diagnose(model, case, classifier, inputs, got)
                    raise _failure(name, where, details, diagnosis, _MODEL_HINT)
    print(verdict_line(name, len(_MODEL_CASES), "fcn_course.models.convolutionalize"))
