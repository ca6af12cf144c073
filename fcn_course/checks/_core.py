"""The machinery every exercise checker shares.

A checker runs the student's function and the package's reference on the same seeded cases.
On the first case where they disagree it raises :class:`CheckFailure`, an ``AssertionError``
whose message says which case, what was expected and what came, and, when the answer matches
a known typical mistake, names that mistake and gives a hint. When every case agrees it
prints one verdict line that does not change between runs, so nbval can compare it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Case", "CheckFailure", "Mistake", "format_value", "run_checks", "verdict_line"]


class CheckFailure(AssertionError):
    """A student's answer disagrees with the reference; the message says where and why."""


@dataclass(frozen=True)
class Case:
    """One seeded call: the positional and keyword arguments given to both implementations."""

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def describe(self, func_name: str) -> str:
        parts = [format_value(a, short=True) for a in self.args]
        parts += [f"{k}={format_value(v, short=True)}" for k, v in self.kwargs.items()]
        return f"{func_name}({', '.join(parts)})"


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: an implementation of it, and what to tell a student who made it."""

    name: str
    implementation: Callable[..., Any]
    hint: str


def format_value(value: Any, *, short: bool = False) -> str:
    """A brief, deterministic rendering of a value for a failure message."""
    if isinstance(value, torch.Tensor):
        if short or value.numel() > 16:
            head = ", ".join(f"{v:.4g}" for v in value.detach().flatten()[:6].tolist())
            more = ", ..." if value.numel() > 6 else ""
            return f"tensor{tuple(value.shape)} [{head}{more}]"
        return f"tensor{tuple(value.shape)} {value.detach().tolist()}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _equal(expected: Any, got: Any, atol: float, rtol: float) -> tuple[bool, str]:
    """Whether ``got`` matches ``expected``; the second item explains a mismatch briefly."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return False, f"expected a torch.Tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return False, (
                f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
            )
        got_f = got.detach().to(torch.float64)
        exp_f = expected.detach().to(torch.float64)
        if torch.allclose(got_f, exp_f, atol=atol, rtol=rtol):
            return True, ""
        bad = torch.isnan(got_f) & ~torch.isnan(exp_f)
        if bad.any():
            where = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
            return False, (
                f"{int(bad.sum())} value(s) are NaN where the reference has numbers, first at "
                f"index {where} (expected {exp_f[where].item():.6g}); look for 0/0 or log(0)"
            )
        diff = (got_f - exp_f).abs().nan_to_num(nan=float("inf"))
        where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0].tolist())
        return False, (
            f"values differ; largest difference {diff.max().item():.4g} at index {where}: "
            f"expected {exp_f[where].item():.6g}, got {got_f[where].item():.6g}"
        )
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        if type(got) is not type(expected):  # e.g. a numpy array, whose == gives an array
            return False, f"expected {expected!r}, got {type(got).__name__} {got!r}"
        return bool(got == expected), f"expected {expected!r}, got {got!r}"
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False, f"expected a number, got {type(got).__name__} {got!r}"
    ok = abs(got - expected) <= atol + rtol * abs(expected)
    return ok, f"expected {format_value(expected)}, got {format_value(got)}"


def _matches(mistake: Mistake, case: Case, got: Any, atol: float, rtol: float) -> bool:
    """Whether the student's answer is what ``mistake`` gives on ``case``."""
    try:
        return _equal(mistake.implementation(*case.args, **dict(case.kwargs)), got, atol, rtol)[0]
    except Exception:  # a mistake's implementation that cannot run on this case never matches
        return False


def verdict_line(func_name: str, num_cases: int, reference: str) -> str:
    """The single line printed when every case agrees; stable across runs and machines."""
    return f"PASS {func_name}: all {num_cases} cases agree with {reference}"


def run_checks(
    func_name: str,
    student: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[Case],
    *,
    reference_name: str,
    mistakes: Sequence[Mistake] = (),
    general_hint: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """Compare ``student`` with ``reference`` on ``cases``; raise on the first disagreement."""
    __tracebackhide__ = True  # IPython and pytest show the student's frames, not these
    if not callable(student):
        raise TypeError(
            f"check of {func_name}: expected your function {func_name} (a callable), got "
            f"{type(student).__name__}; pass the function itself, without calling it"
        )
    for number, case in enumerate(cases, start=1):
        expected = reference(*case.args, **dict(case.kwargs))
        where = f"case {number} of {len(cases)}: {case.describe(func_name)}"
        try:
            got = student(*case.args, **dict(case.kwargs))
        except NotImplementedError as err:
            hint = f"\nhint: {err}" if str(err) else ""
            raise CheckFailure(
                f"{func_name} is not implemented yet: replace the `raise NotImplementedError(...)`"
                f" line in its cell with your code, run that cell, then run this check again."
                f"{hint}"
            ) from None
        except Exception as err:
            raise CheckFailure(
                f"{func_name} raised {type(err).__name__} on {where}:\n"
                f"  {err}\n"
                f"hint: {general_hint or 'read the traceback above this message.'}"
            ) from err
        ok, detail = _equal(expected, got, atol, rtol)
        if ok:
            continue
        lines = [f"{func_name} does not match the reference on {where}", f"  {detail}"]
        if isinstance(expected, torch.Tensor):
            lines += [f"  expected: {format_value(expected)}", f"  got:      {format_value(got)}"]
        known = [m for m in mistakes if _matches(m, case, got, atol, rtol)]
        if known:
            lines.append(f"diagnosis: this is a typical mistake: {known[0].name}.")
            lines.append("hint: " + known[0].hint)
        elif general_hint:
            lines.append("hint: " + general_hint)
        raise CheckFailure("\n".join(x if len(x) <= 400 else x[:397] + "..." for x in lines))
    print(verdict_line(func_name, len(cases), reference_name))
