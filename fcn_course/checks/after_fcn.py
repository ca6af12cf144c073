"""Checkers for exercise 08 (chapter "What came after FCN"): a U-Net decoder block and the
dense kernel of an atrous convolution.

``check_unet_decoder_block`` builds a student's ``UNetDecoderBlock(in_channels,
skip_channels, out_channels)``, makes sure it has the parameters of the package's
:class:`~fcn_course.models.UNetDecoderBlock` under the same names (``up.*`` and ``conv.*``),
loads a seeded reference block's weights into it (batch-norm statistics drawn at random, so
that they matter) and compares the two in eval mode, on skips that are one pixel smaller,
equal or one pixel larger than the upsampled map.

``check_dilate_kernel`` compares a student's ``dilate_kernel(weight, rate)`` with
:func:`fcn_course.models.dilate_kernel`, then the convolution with the student's dense kernel
with the oracle ``F.conv2d(x, weight, dilation=rate)``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcn_course._validation import describe
from fcn_course.checks._core import Case, CheckFailure, Mistake, run_checks
from fcn_course.models.deeplab import dilate_kernel
from fcn_course.models.unet import UNetDecoderBlock, match_size

__all__ = ["check_dilate_kernel", "check_unet_decoder_block"]

_SEED = 8  # exercise 08


# ----------------------------------------------------------------------------- task 1: block


@dataclass(frozen=True)
class _BlockSetup:
    """One block and its inputs: channels, batch, ``x``'s size ``(h, w)``, the skip's ``(H, W)``."""

    in_channels: int
    skip_channels: int
    out_channels: int
    batch: int
    size: tuple[int, int]
    skip_size: tuple[int, int]
    seed: int

    @property
    def up_channels(self) -> int:
        return self.in_channels // 2

    def constructor(self) -> str:
        return (f"UNetDecoderBlock(in_channels={self.in_channels}, skip_channels="
                f"{self.skip_channels}, out_channels={self.out_channels})")


@dataclass(frozen=True)
class _BlockCase(Case):
    """A case whose description names the block and the shapes of its two inputs."""

    def describe(self, func_name: str) -> str:
        setup: _BlockSetup = self.args[0]
        n, (h, w), (big_h, big_w) = setup.batch, setup.size, setup.skip_size
        return (f"{setup.constructor()}.eval() on x of shape {(n, setup.in_channels, h, w)} "
                f"and skip of shape {(n, setup.skip_channels, big_h, big_w)} (the up-convolution "
                f"gives {2 * h}x{2 * w})")


# U-Net's own widths first, with sizes that already agree (so that a concatenation in the
# wrong order, or a sum, fails before any size question arises); then skips one pixel larger
# (padding), one pixel smaller (cropping, as U-Net's rounding-up pools give), and mixed, with
# odd in_channels, batches of 2 and 3, and a 1x1 map.
_BLOCK_SETUPS = [
    _BlockSetup(8, 4, 4, 1, (4, 5), (8, 10), _SEED),
    _BlockSetup(8, 4, 4, 2, (5, 6), (11, 13), _SEED + 1),
    _BlockSetup(6, 5, 3, 2, (5, 6), (9, 11), _SEED + 2),
    _BlockSetup(5, 3, 4, 1, (4, 3), (7, 7), _SEED + 3),
    _BlockSetup(4, 6, 2, 3, (1, 1), (1, 2), _SEED + 4),
    _BlockSetup(16, 8, 8, 1, (6, 7), (12, 13), _SEED + 5),
]

_BLOCK_CASES = [_BlockCase(args=(setup,)) for setup in _BLOCK_SETUPS]


def _randomize(block: UNetDecoderBlock, generator: torch.Generator) -> UNetDecoderBlock:
    """Batch norms with random affine parameters and statistics, the up-convolution with a
    visible bias: in eval mode every parameter and buffer then changes the output."""
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0.0, 0.2, generator=generator)
                m.running_mean.normal_(0.0, 0.2, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
        block.up.bias.normal_(0.0, 0.5, generator=generator)
    return block.eval()


@functools.cache
def _reference_run(
    setup: _BlockSetup,
) -> tuple[UNetDecoderBlock, dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference block (eval mode), its state, ``x``, ``skip`` and ``block(x, skip)``.

    Computed once per process, without touching the global random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.seed)
        block = UNetDecoderBlock(setup.in_channels, setup.skip_channels, setup.out_channels)
    gen = torch.Generator().manual_seed(setup.seed)
    _randomize(block, gen)
    x = torch.randn(setup.batch, setup.in_channels, *setup.size, generator=gen)
    skip = torch.randn(setup.batch, setup.skip_channels, *setup.skip_size, generator=gen)
    with torch.no_grad():
        expected = block(x, skip)  # (N, C_out, H, W)
    state = {name: t.detach().clone() for name, t in block.state_dict().items()}
    return block, state, x, skip, expected


def _reference_block(setup: _BlockSetup) -> torch.Tensor:
    return _reference_run(setup)[4].clone()


def _build_student(block_class: Callable[..., Any], setup: _BlockSetup) -> Any:
    """The student's block for ``setup``, built without moving the global random state."""
    with torch.random.fork_rng(devices=[]):
        return block_class(
            in_channels=setup.in_channels, skip_channels=setup.skip_channels,
            out_channels=setup.out_channels,
        )


def _student_block(block_class: Callable[..., Any]) -> Callable[[_BlockSetup], Any]:
    """Build the student's block, load the reference's weights, run it in eval mode."""

    def run(setup: _BlockSetup) -> Any:
        __tracebackhide__ = True
        block = _build_student(block_class, setup)
        _, state, x, skip, _ = _reference_run(setup)
        block.load_state_dict({k: v.clone() for k, v in state.items()}, strict=False)
        block.eval()
        try:
            with torch.no_grad():
                return block(x.clone(), skip.clone())
        except RuntimeError as err:
            diagnosis = _error_diagnosis(str(err), setup)
            if diagnosis is None:
                raise
            raise RuntimeError(f"{err}\ndiagnosis: this is a typical mistake: {diagnosis}.") \
                from err

    return run


_CONV_CHANNELS = re.compile(
    r"expected input\[(\d+), \d+, \d+, \d+\] to have (\d+) channels, but got (\d+) channels"
)


def _error_diagnosis(text: str, setup: _BlockSetup) -> str | None:
    """The typical mistake behind an error the student's forward raised, if one is known.

    Four mistakes cannot produce an output at all: adding the skip (the double convolution
    then reads too few channels, or the sum meets maps of different channel counts),
    concatenating along the batch, upsampling ``x`` by interpolation (too many channels:
    the up-convolution halves them), and leaving out the size match (the maps differ by a
    pixel).
    """
    c_up, c_skip, c_in = setup.up_channels, setup.skip_channels, setup.in_channels
    match = _CONV_CHANNELS.search(text)
    if match:
        batch, want, got = (int(g) for g in match.groups())
        if want == c_up + c_skip and batch == 2 * setup.batch:
            return ("the maps were concatenated along dim 0 (the batch) instead of dim 1 (the "
                    "channels): torch.cat([up, skip], dim=1)")
        if want == c_up + c_skip and got in (c_up, c_skip):
            return ("the skip was added to the upsampled map (or one of the two left out) "
                    "instead of concatenated; U-Net keeps both: torch.cat([up, skip], dim=1), "
                    f"{c_up} + {c_skip} = {c_up + c_skip} channels for self.conv")
        if want == c_up + c_skip and got == c_in + c_skip:
            return ("x was upsampled by interpolation, not by self.up: the up-convolution "
                    f"halves the channels ({c_in} -> {c_up}), interpolation keeps them")
        return None
    if "must match the size of tensor b" in text and text.rstrip(".").endswith("dimension 1"):
        return ("maps with different channel counts were added: U-Net concatenates them, "
                "torch.cat([up, skip], dim=1)")
    if "Sizes of tensors must match except in dimension 0" in text:
        return ("the maps were concatenated along dim 0 (the batch) instead of dim 1 (the "
                "channels): torch.cat([up, skip], dim=1)")
    if "Sizes of tensors must match except in dimension 1" in text or (
        "must match the size of tensor b" in text
    ):
        return ("the upsampled map and the skip differ in size by a pixel and were joined "
                "without matching their sizes: crop the extra row/column or zero-pad the "
                "missing one, at the bottom/right, so that up has the skip's (H, W)")
    return None


def _parameter_problems(
    block: nn.Module, state: dict[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """Reference names missing from ``block``, names of another shape, and names it adds."""
    have = {name: tuple(t.shape) for name, t in block.state_dict().items()}
    want = {name: tuple(t.shape) for name, t in state.items()}
    missing = [f"{name} {want[name]}" for name in want if name not in have]
    misshaped = [f"{name}: expected {want[name]}, got {have[name]}"
                 for name in want if name in have and have[name] != want[name]]
    extra = [name for name in have if name not in want]
    return missing, misshaped, extra


def _structure_diagnosis(block: nn.Module, setup: _BlockSetup) -> tuple[str, str] | None:
    """A typical mistake read off the shapes of the student's layers: (name, hint)."""
    have = {name: tuple(t.shape) for name, t in block.state_dict().items()}
    c_in, c_up, c_skip = setup.in_channels, setup.up_channels, setup.skip_channels
    up, conv1 = have.get("up.weight"), have.get("conv.conv1.weight")
    reads = conv1[1] if conv1 is not None and len(conv1) == 4 else None
    if up is None and reads == c_in + c_skip:
        return ("x is upsampled by interpolation (nn.Upsample or F.interpolate) instead of the "
                "transposed convolution",
                "U-Net's up-convolution is learned and halves the channels: self.up = "
                f"nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2), "
                f"and self.conv reads in_channels // 2 + skip_channels = {c_up + c_skip}.")
    if up is not None and len(up) == 4 and up[:2] == (c_in, c_in):
        return ("the up-convolution keeps the channels; U-Net's halves them",
                f"self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, "
                f"stride=2): {c_in} -> {c_up} channels here.")
    if up is not None and len(up) == 4 and up[2:] != (2, 2):
        return ("the up-convolution's kernel is not 2x2",
                "a 2x upsampling whose output pixels each come from exactly one input pixel: "
                "kernel_size=2, stride=2, no padding.")
    if reads is not None and reads in (c_up, c_skip) and reads != c_up + c_skip:
        return ("self.conv reads the channels of one map: the skip is added, not concatenated",
                "concatenate the maps, torch.cat([up, skip], dim=1), and build self.conv = "
                f"DoubleConv(in_channels // 2 + skip_channels, out_channels): {c_up} + "
                f"{c_skip} = {c_up + c_skip} channels in here.")
    return None


def _listing(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


_NAMES_HINT = (
    "keep the names of the notebook: self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, "
    "kernel_size=2, stride=2) and self.conv = DoubleConv(in_channels // 2 + skip_channels, "
    "out_channels); the check loads the reference's weights into them by name."
)


def _require_reference_parameters(block_class: Callable[..., Any]) -> None:
    """Fail clearly when the student's block cannot take the reference's weights.

    A block that cannot be built (a stub, a typo) is left to :func:`run_checks`, which
    reports it in its usual words.
    """
    __tracebackhide__ = True
    for setup in _BLOCK_SETUPS:
        try:
            block = _build_student(block_class, setup)
        except Exception:
            return
        if not isinstance(block, nn.Module):
            raise CheckFailure(
                f"{setup.constructor()} returned {describe(block)}; expected an nn.Module\n"
                "hint: write a class that subclasses nn.Module and calls super().__init__() "
                "first, and pass the class itself to the check."
            )
        missing, misshaped, extra = _parameter_problems(block, _reference_run(setup)[1])
        if not (missing or misshaped):
            continue
        lines = [f"{setup.constructor()} does not have the parameters of the reference block, "
                 "so the check cannot load the reference's weights into it:"]
        if missing:
            lines.append(f"  missing: {_listing(missing)}")
        if misshaped:
            lines.append(f"  wrong shape: {_listing(misshaped, 3)}")
        if extra:
            lines.append(f"  not in the reference: {_listing(extra)}")
        diagnosis = _structure_diagnosis(block, setup)
        if diagnosis is not None:
            lines.append(f"diagnosis: this is a typical mistake: {diagnosis[0]}.")
            lines.append("hint: " + diagnosis[1])
        else:
            lines.append("hint: " + _NAMES_HINT)
        raise CheckFailure("\n".join(x if len(x) <= 400 else x[:397] + "..." for x in lines))


# --------------------------------------------------------------- task 1: mistakes that run


def _decode(setup: _BlockSetup, *, order: str = "up_first", size: str = "bottom_right"
            ) -> torch.Tensor:
    """The reference block's forward, with one typical slip per keyword.

    ``order``: ``"up_first"`` (right) or ``"skip_first"``. ``size``: ``"bottom_right"``
    (right, :func:`match_size`), ``"top_left"`` (the extra row cut, or the missing one
    padded, at the top/left), ``"floor_split"`` (``F.pad`` with ``[d // 2, d - d // 2]``
    on both axes), ``"nearest"``/``"bilinear"`` (resized with ``F.interpolate``).
    """
    block, _, x, skip, _ = _reference_run(setup)
    height, width = skip.shape[-2:]
    with torch.no_grad():
        up = block.up(x.clone())  # (N, C_up, 2h, 2w)
        if size == "bottom_right":
            up = match_size(up, (height, width))
        elif size == "top_left":
            up = up[..., -height:, -width:]
            pad_h, pad_w = height - up.shape[-2], width - up.shape[-1]
            up = F.pad(up, (pad_w, 0, pad_h, 0))
        elif size == "floor_split":
            dh, dw = height - up.shape[-2], width - up.shape[-1]
            up = F.pad(up, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
        else:
            up = F.interpolate(up, size=(height, width), mode=size,
                               **({"align_corners": False} if size == "bilinear" else {}))
        maps = [up, skip.clone()] if order == "up_first" else [skip.clone(), up]
        return block.conv(torch.cat(maps, dim=1))  # (N, C_out, H, W)


def _block_mistake(**how: str) -> Callable[[_BlockSetup], torch.Tensor]:
    return lambda setup: _decode(setup, **how)


_BLOCK_MISTAKES = [
    Mistake(
        "the maps are concatenated in the order [skip, up] instead of [up, skip]",
        _block_mistake(order="skip_first"),
        "the reference (and the weights loaded into your block) expect the upsampled map's "
        "channels first: torch.cat([up, skip], dim=1). Some implementations put the skip "
        "first; either works when trained, but the order fixes what each weight of "
        "self.conv.conv1 reads.",
    ),
    Mistake(
        "the size match is centred with F.pad(up, [dw // 2, dw - dw // 2, dh // 2, "
        "dh - dh // 2]), which cuts a map that is one pixel too large at the top/left",
        _block_mistake(size="floor_split"),
        "for a map one pixel too large dw = -1 and dw // 2 = -1: the first column is cut. "
        "Both grids start at the same top-left pixel, so the extra (or missing) pixel is "
        "always the last one: crop with up[..., :H, :W] and zero-pad at the bottom/right.",
    ),
    Mistake(
        "the extra row/column is cut (or the missing one padded) at the top/left instead of "
        "the bottom/right",
        _block_mistake(size="top_left"),
        "pixel 0 of the up-convolution's output lies on pixel 0 of the skip: keep the "
        "top-left corner, up[..., :H, :W], and pad with zeros after the last row/column, "
        "F.pad(up, (0, pad_w, 0, pad_h)).",
    ),
    *(
        Mistake(
            f"the upsampled map is resized to the skip's size with F.interpolate ({mode}) "
            "instead of cropped or padded",
            _block_mistake(size=mode),
            "resizing stretches the whole map and moves every pixel a little; the grids "
            "already agree from the top-left on, so only the last row/column is cut or added: "
            "up[..., :H, :W], then F.pad(up, (0, pad_w, 0, pad_h)).",
        )
        for mode in ("nearest", "bilinear")
    ),
]

_BLOCK_HINT = (
    "up = self.up(x) (N, in_channels // 2, 2h, 2w); cut or zero-pad it at the bottom/right to "
    "the skip's (H, W); return self.conv(torch.cat([up, skip], dim=1))."
)


def check_unet_decoder_block(student: Callable[..., nn.Module]) -> None:
    """Check a student's ``UNetDecoderBlock(in_channels, skip_channels, out_channels)`` class.

    The block must have ``up``, an ``nn.ConvTranspose2d(in_channels, in_channels // 2, 2,
    stride=2)``, and ``conv``, a :class:`~fcn_course.models.DoubleConv` from
    ``in_channels // 2 + skip_channels`` to ``out_channels``; ``block(x, skip)`` upsamples
    ``x``, crops or zero-pads it at the bottom/right to the skip's size, concatenates
    ``[up, skip]`` and applies ``conv``. The reference's weights are loaded into it by name
    and outputs compared in eval mode (chapter "What came after FCN").
    """
    __tracebackhide__ = True
    if isinstance(student, nn.Module):
        raise TypeError(
            "check of UNetDecoderBlock: expected your class UNetDecoderBlock, got an instance "
            f"of {type(student).__name__}; pass the class itself, e.g. "
            "check_unet_decoder_block(UNetDecoderBlock): the check builds blocks of several sizes"
        )
    if callable(student):
        _require_reference_parameters(student)
    run_checks(
        "UNetDecoderBlock",
        _student_block(student) if callable(student) else student,
        _reference_block,
        _BLOCK_CASES,
        reference_name="fcn_course.models.UNetDecoderBlock",
        mistakes=_BLOCK_MISTAKES,
        general_hint=_BLOCK_HINT,
    )


# ----------------------------------------------------------------------------- task 2: kernel


@dataclass(frozen=True)
class _KernelCase(Case):
    """``(weight, rate)``: compare kernels; ``(weight, rate, x)``: compare convolutions."""

    def describe(self, func_name: str) -> str:
        weight, rate = self.args[:2]
        if len(self.args) == 2:
            return f"{func_name}(weight of shape {tuple(weight.shape)}, rate={rate})"
        x = self.args[2]
        return (f"F.conv2d(x, {func_name}(weight, rate={rate})) against F.conv2d(x, weight, "
                f"dilation={rate}), with weight of shape {tuple(weight.shape)} and x of shape "
                f"{tuple(x.shape)}")


# (C_out, C_in, kH, kW, rate): rate 2 first (a kernel 3 -> 5), then rate 3, rate 1 (no
# change), an even kernel, non-square kernels, a 1x1 kernel (which no rate changes).
_KERNEL_SHAPES = [
    (1, 1, 3, 3, 2),
    (2, 3, 3, 3, 3),
    (2, 2, 3, 3, 1),
    (1, 2, 2, 2, 4),
    (3, 1, 1, 3, 2),
    (2, 2, 5, 3, 3),
    (1, 1, 1, 1, 5),
]
# (N, C_out, C_in, kH, kW, rate, H, W): the oracle, PyTorch's own dilated convolution.
_CONV_SHAPES = [
    (2, 3, 2, 3, 3, 2, 13, 15),
    (1, 2, 3, 3, 3, 4, 11, 12),
    (1, 2, 2, 2, 3, 3, 9, 10),
]


def _kernel_cases(seed: int = _SEED) -> list[Case]:
    """Fresh tensors each time: an answer that edits them in place harms nothing."""
    gen = torch.Generator().manual_seed(seed)
    cases: list[Case] = []
    for c_out, c_in, kh, kw, rate in _KERNEL_SHAPES:
        weight = torch.randn(c_out, c_in, kh, kw, generator=gen)
        cases.append(_KernelCase(args=(weight, rate)))
    for n, c_out, c_in, kh, kw, rate, h, w in _CONV_SHAPES:
        weight = torch.randn(c_out, c_in, kh, kw, generator=gen)
        x = torch.randn(n, c_in, h, w, generator=gen)
        cases.append(_KernelCase(args=(weight, rate, x)))
    return cases


def _reference_kernel(
    weight: torch.Tensor, rate: int, x: torch.Tensor | None = None
) -> torch.Tensor:
    if x is None:
        return dilate_kernel(weight, rate)  # (C_out, C_in, K, K)
    return F.conv2d(x, weight, dilation=rate)  # the oracle: (N, C_out, H - K + 1, W - K + 1)


def _kernel_or_conv(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func(weight, rate)`` on a kernel case; ``F.conv2d(x, func(weight, rate))`` on a
    convolution case."""

    def run(weight: torch.Tensor, rate: int, x: torch.Tensor | None = None) -> Any:
        __tracebackhide__ = True
        dense = func(weight.clone(), rate)
        if x is None or not isinstance(dense, torch.Tensor):
            return dense
        return F.conv2d(x.clone(), dense.to(x.dtype))

    return run


def _spread(
    weight: torch.Tensor, rate: int, *, size: Callable[[int, int], int], gap: int, start: int = 0
) -> torch.Tensor:
    """``weight``'s taps ``gap`` apart from ``start`` in a zero kernel ``size(k, rate)`` wide."""
    kh, kw = weight.shape[-2:]
    dense = weight.new_zeros(*weight.shape[:2], size(kh, rate), size(kw, rate))
    rows = torch.arange(kh) * gap + start
    cols = torch.arange(kw) * gap + start
    dense[..., rows[:, None], cols[None, :]] = weight
    return dense


def _right_size(k: int, r: int) -> int:
    return r * (k - 1) + 1


def _kernel_rate_zeros(weight: torch.Tensor, rate: int) -> torch.Tensor:
    return _spread(weight, rate, size=lambda k, r: k + (k - 1) * r, gap=rate + 1)


def _kernel_trailing_zeros(weight: torch.Tensor, rate: int) -> torch.Tensor:
    return _spread(weight, rate, size=lambda k, r: k * r, gap=rate)


def _kernel_size_k_plus_k1_r(weight: torch.Tensor, rate: int) -> torch.Tensor:
    return _spread(weight, rate, size=lambda k, r: k + (k - 1) * r, gap=rate)


def _kernel_size_rk_minus_1(weight: torch.Tensor, rate: int) -> torch.Tensor:
    return _spread(weight, rate, size=lambda k, r: max(r * k - 1, k), gap=rate)


def _kernel_zero_padded(weight: torch.Tensor, rate: int) -> torch.Tensor:
    k = weight.shape[-2]
    if weight.shape[-1] != k:  # only square kernels can sit centred in a square frame
        return torch.full((1,), float("nan"))
    return _spread(weight, rate, size=_right_size, gap=1, start=(_right_size(k, rate) - k) // 2)


_KERNEL_MISTAKES = [
    Mistake(
        "rate zeros are inserted between neighbouring taps instead of rate - 1 (the taps are "
        "rate + 1 apart)",
        _kernel_rate_zeros,
        "at rate r tap i sits at r * i: between two taps there are r - 1 zeros (rate 1 is an "
        "ordinary convolution, with none).",
    ),
    Mistake(
        "zeros are also appended after the last tap (the dense kernel is k * rate wide)",
        _kernel_trailing_zeros,
        "the last tap, k - 1, sits at rate * (k - 1), and the kernel ends there: it is "
        "rate * (k - 1) + 1 wide, not k * rate.",
    ),
    Mistake(
        "the effective size is k + (k - 1) * rate, one zero too many per gap: the taps are "
        "right but the kernel ends in extra zero rows/columns",
        _kernel_size_k_plus_k1_r,
        "each of the k - 1 gaps holds rate - 1 zeros: K = k + (k - 1) * (rate - 1) = "
        "rate * (k - 1) + 1.",
    ),
    Mistake(
        "the effective size is rate * k - 1, right only at rate 2",
        _kernel_size_rk_minus_1,
        "count the k taps and the k - 1 gaps of rate - 1 zeros: K = k + (k - 1) * (rate - 1) "
        "= rate * (k - 1) + 1 (5 for k = 3 at rate 2, but 7 at rate 3, not 8).",
    ),
    Mistake(
        "the kernel is zero-padded to the effective size instead of dilated (its taps are "
        "still neighbours)",
        _kernel_zero_padded,
        "dilation spreads the taps out, it does not frame them: weight[..., i, j] goes to "
        "dense[..., rate * i, rate * j].",
    ),
]

_SIZE_ERRORS = ("must match the existing size", "cannot be broadcast to indexing result",
              "out of bounds")


def _explain_kernel_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Name the mistake behind the error that a dense kernel of the wrong size gives when
    ``dense[..., ::rate, ::rate] = weight`` finds more or fewer slots than taps."""

    def checked(weight: torch.Tensor, rate: int) -> Any:
        __tracebackhide__ = True
        try:
            return func(weight, rate)
        except (RuntimeError, IndexError) as err:
            if not any(text in str(err) for text in _SIZE_ERRORS):
                raise
            raise type(err)(
                f"{err}\ndiagnosis: this is a typical mistake: a wrong effective size: a dense "
                "kernel that does not hold exactly k taps rate apart; it is rate * (k - 1) + 1 "
                "= k + (k - 1) * (rate - 1) wide."
            ) from err

    return checked


def check_dilate_kernel(student: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """Check a student's ``dilate_kernel(weight, rate)`` (chapter "What came after FCN").

    ``weight`` of shape ``(C_out, C_in, k, k)`` must become ``(C_out, C_in, K, K)`` with
    ``K = rate * (k - 1) + 1`` and ``weight[..., i, j]`` at ``[..., rate * i, rate * j]``.
    Compared with :func:`fcn_course.models.dilate_kernel`, then, convolved with ``x``, with
    the oracle ``F.conv2d(x, weight, dilation=rate)``.
    """
    __tracebackhide__ = True
    run_checks(
        "dilate_kernel",
        _kernel_or_conv(_explain_kernel_errors(student)) if callable(student) else student,
        _reference_kernel,
        _kernel_cases(),
        reference_name="fcn_course.models.dilate_kernel and F.conv2d(x, weight, dilation=rate)",
        mistakes=[Mistake(m.name, _kernel_or_conv(m.implementation), m.hint)
                  for m in _KERNEL_MISTAKES],
        general_hint="make a zero tensor (C_out, C_in, K_h, K_w) with K = rate * (k - 1) + 1 "
        "per axis, then put the taps rate apart: dense[..., ::rate, ::rate] = weight.",
    )
