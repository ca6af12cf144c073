"""Checkers for the exercise on skip fusion (chapter "Skip connections: FCN-16s and FCN-8s").

The student writes the head of FCN-16s or FCN-8s: from the coarse scores ``score_fr`` and the
``pool4`` (and ``pool3``) features to full-resolution logits, using the layers of a given
model. The reference is the model's own ``forward`` on an input image; the checker records
``score_fr``, ``pool4`` and ``pool3`` during that forward with hooks and hands them to the
student's function. The score layers get random, non-zero weights and the learned 2x
upsamplers bilinear weights plus noise, as after training (the final upsampler stays fixed
bilinear, as in the model), so that each branch, each layer, each crop and each scale
changes the answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcn_course.checks._core import Case, Mistake, run_checks
from fcn_course.models.fcn import FCN, SKIP_SCALE_POOL3, SKIP_SCALE_POOL4, fcn8s, fcn16s

__all__ = ["check_fcn8s_fusion", "check_fcn16s_fusion"]

#: Classes of the checker's models: few, so that the cases run fast, more than one.
NUM_CLASSES = 4

#: ``(skip_scaling, batch, height, width)`` per case: square, odd and non-square sizes (where
#: a centre crop and the derived crop disagree), a batch of two, and the at-once variant.
_SIZES: tuple[tuple[bool, int, int, int], ...] = (
    (False, 1, 64, 64),
    (False, 1, 97, 131),
    (False, 2, 33, 47),
    (True, 1, 64, 80),
    (True, 1, 57, 45),
)

#: Per variant: the skips in order, each with its 2x upsampler, and the final upsampler.
_LAYERS: dict[str, dict[str, Any]] = {
    "16s": {"skips": ("pool4",), "ups": ("upscore2",), "final": "upscore16"},
    "8s": {"skips": ("pool4", "pool3"), "ups": ("upscore2", "upscore_pool4"), "final": "upscore8"},
}


@dataclass(frozen=True)
class _FusionCase(Case):
    """A case whose description names the model, not its (long) ``repr``."""

    variant: str = "8s"
    skip_scaling: bool = False

    def describe(self, func_name: str) -> str:
        names = ", ".join(("score_fr", *_LAYERS[self.variant]["skips"]))
        shapes = ", ".join(f"{tuple(t.shape)}" for t in self.args[1:-1])
        return (
            f"{func_name}(model, {names}, size={tuple(self.args[-1])}) with model = "
            f"fcn{self.variant}(num_classes={NUM_CLASSES}, skip_scaling={self.skip_scaling}) "
            f"and input shapes {shapes}"
        )


# ----------------------------------------------------------------------------- the cases


def _record(
    model: FCN, x: torch.Tensor, variant: str
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``model(x)`` and, recorded with forward hooks, what its head reads.

    ``"score_fr"`` (the coarse scores), ``"pool4"``/``"pool3"`` (the backbone's outputs) and
    ``"in_<layer>"``, the input of each score layer (the skips after their scaling).
    """
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            seen[name] = output.detach().clone()
            seen[f"in_{name}"] = args[0].detach().clone()

        return hook

    layers = {"score_fr": model.score_fr}
    for skip in _LAYERS[variant]["skips"]:
        layers[skip] = getattr(model.backbone.features, skip)
        layers[f"score_{skip}"] = getattr(model, f"score_{skip}")
    handles = [layer.register_forward_hook(keep(name)) for name, layer in layers.items()]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits, seen


def _randomize_head(
    model: FCN, variant: str, seen: dict[str, torch.Tensor], generator: torch.Generator
) -> None:
    """Random non-zero weights for the score and 2x layers; each score map of std about 1.

    The score layers' weights are scaled by the size of what they read (``seen``, from
    :func:`_record`), so a branch scaled by 0.0001 gets weights 10**4 times larger, as
    training the at-once variant makes them, and every branch counts in the sum.
    """
    for name in ("score_fr", *(f"score_{s}" for s in _LAYERS[variant]["skips"])):
        layer: nn.Conv2d = getattr(model, name)
        fan_in = layer.in_channels * seen[f"in_{name}"].pow(2).mean().item()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
            layer.weight.div_(max(fan_in, 1e-30) ** 0.5)
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))
    for name in _LAYERS[variant]["ups"]:  # "learned": bilinear plus noise
        weight = getattr(model, name).weight
        with torch.no_grad():
            weight.add_(0.2 * torch.randn(weight.shape, generator=generator))


def _build(variant: str, skip_scaling: bool, seed: int) -> FCN:
    """A fresh model of the variant, built without touching the global random state."""
    build = fcn8s if variant == "8s" else fcn16s
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + int(skip_scaling))
        return build(num_classes=NUM_CLASSES, skip_scaling=skip_scaling).eval()


#: What one reference forward gave: skip_scaling, the head's inputs, size, ``model(x)``.
_Run = tuple[bool, tuple[torch.Tensor, ...], tuple[int, int], torch.Tensor]


@functools.cache
def _reference_runs(
    variant: str, seed: int = 0
) -> tuple[dict[bool, dict[str, torch.Tensor]], tuple[_Run, ...]]:
    """The models' weights and one run of ``model(x)`` per case, computed once per process.

    The backbone forwards are the slow part of a check; every check builds fresh models from
    these weights and fresh copies of the tensors, so an answer that changes them in place
    cannot change the next check.
    """
    skips = _LAYERS[variant]["skips"]
    generator = torch.Generator().manual_seed(seed)
    models: dict[bool, FCN] = {}
    runs: list[_Run] = []
    for skip_scaling, batch, height, width in _SIZES:
        x = torch.randn(batch, 3, height, width, generator=generator)
        if skip_scaling not in models:
            model = _build(variant, skip_scaling, seed)
            _randomize_head(model, variant, _record(model, x, variant)[1], generator)
            models[skip_scaling] = model
        logits, seen = _record(models[skip_scaling], x, variant)
        inputs = (seen["score_fr"], *(seen[name] for name in skips))
        runs.append((skip_scaling, inputs, (height, width), logits))
    states = {
        key: {name: t.detach().clone() for name, t in model.state_dict().items()}
        for key, model in models.items()
    }
    return states, tuple(runs)


def _make_cases(variant: str, seed: int = 0) -> tuple[list[_FusionCase], dict[int, torch.Tensor]]:
    """Seeded cases and, keyed by ``id(score_fr)``, the logits of ``model(x)`` for each.

    The global random state is left as it was: the student's notebook keeps its own seed.
    """
    states, runs = _reference_runs(variant, seed)
    models = {}
    for skip_scaling, state in states.items():
        models[skip_scaling] = _build(variant, skip_scaling, seed)
        models[skip_scaling].load_state_dict(state)
    cases: list[_FusionCase] = []
    expected: dict[int, torch.Tensor] = {}
    for skip_scaling, inputs, size, logits in runs:
        copies = tuple(t.clone() for t in inputs)
        args = (models[skip_scaling], *copies, size)
        cases.append(_FusionCase(args=args, variant=variant, skip_scaling=skip_scaling))
        expected[id(copies[0])] = logits.clone()
    return cases, expected


# ----------------------------------------------------------------------------- mistakes


def _crop(x: torch.Tensor, offset: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    (oy, ox), (h, w) = offset, size
    return x[..., oy : oy + h, ox : ox + w]


def _fuse(
    model: FCN,
    score_fr: torch.Tensor,
    *skips_and_size: Any,
    variant: str,
    crop: str = "derived",
    drop: tuple[str, ...] = (),
    scaling: str = "model",
    upsample: str = "learned",
    align_corners: bool = False,
    reuse_upscore2: bool = False,
    final_crop: bool = True,
) -> torch.Tensor:
    """The fusion, right by default, and with one typical mistake per keyword.

    ``crop``: ``"derived"`` (``model.crop_offsets``), ``"zero"`` (top-left corner),
    ``"centre"``, or ``"first"`` (``upscore2``'s offset for every crop). ``drop``: skips
    whose scores are left out of the sum. ``scaling``: ``"model"`` (``model.scale_*``),
    ``"none"`` or ``"always"`` (the paper's 0.01 and 0.0001 whatever the model says).
    ``upsample``: ``"learned"`` or ``"interpolate"`` (bilinear ``F.interpolate`` to the
    target size, with ``align_corners``).
    """
    *features, size = skips_and_size
    names = _LAYERS[variant]

    def upsample_and_crop(h: torch.Tensor, layer: str, target: Sequence[int]) -> torch.Tensor:
        if upsample == "interpolate":
            return F.interpolate(
                h, size=tuple(target), mode="bilinear", align_corners=align_corners
            )
        h = getattr(model, layer)(h)
        if crop == "zero":
            offset: Sequence[int] = (0, 0)
        elif crop == "centre":
            offset = ((h.shape[-2] - target[0]) // 2, (h.shape[-1] - target[1]) // 2)
        elif crop == "first":
            offset = model.crop_offsets["upscore2"]
        else:
            offset = model.crop_offsets[layer]
        return _crop(h, offset, target)

    paper = {"pool4": SKIP_SCALE_POOL4, "pool3": SKIP_SCALE_POOL3}
    h = score_fr
    for skip, up, x in zip(names["skips"], names["ups"], features, strict=True):
        scale = {"model": getattr(model, f"scale_{skip}"), "none": 1.0, "always": paper[skip]}
        score = getattr(model, f"score_{skip}")(x * scale[scaling])
        h = upsample_and_crop(h, "upscore2" if reuse_upscore2 else up, score.shape[-2:])
        if skip not in drop:
            h = h + score
    if not final_crop:
        return getattr(model, names["final"])(h)
    return upsample_and_crop(h, names["final"], size)


def _mistake(variant: str, **how: Any) -> Callable[..., torch.Tensor]:
    def wrong(*args: Any) -> torch.Tensor:
        with torch.no_grad():
            return _fuse(*args, variant=variant, **how)

    return wrong


def _mistakes(variant: str) -> list[Mistake]:
    final = _LAYERS[variant]["final"]
    first = [
        Mistake(
            "the pool3 branch is missing: this is FCN-16s's fusion run through FCN-8s's layers",
            _mistake(variant, drop=("pool3",)),
            "after upscore_pool4 and its crop, add score_pool3 (the scores of pool3, scaled by "
            "model.scale_pool3) before upscore8: that sum is what makes the net 8s.",
        ),
        Mistake(
            "upscore2 is used for both 2x upsamplings",
            _mistake(variant, reuse_upscore2=True),
            "each 2x step has its own learned layer: upscore2 after score_fr, upscore_pool4 "
            "after the pool4 sum.",
        ),
    ] if variant == "8s" else []
    return [
        *first,
        Mistake(
            "the pool4 branch is missing: score_pool4 is never added",
            _mistake(variant, drop=("pool4", "pool3")),
            "after upscore2 and its crop, add score_pool4 (the scores of pool4, scaled by "
            "model.scale_pool4); without the skips the net is FCN-32s upsampled in steps.",
        )
        if variant == "16s"
        else Mistake(
            "the pool4 branch is missing: score_pool4 is never added",
            _mistake(variant, drop=("pool4",)),
            "after upscore2 and its crop, add score_pool4 (the scores of pool4, scaled by "
            "model.scale_pool4) before upsampling again.",
        ),
        Mistake(
            "the crops start at offset 0 (the top-left corner)",
            _mistake(variant, crop="zero"),
            "an upsampled map starts a few pixels before the map it is added to; crop it at "
            "model.crop_offsets[name] (rows, columns), where name is the upsampling layer.",
        ),
        Mistake(
            "centre crops instead of the offsets derived from the layers' geometry",
            _mistake(variant, crop="centre"),
            "the margin an upsampling layer adds is not split evenly between both sides (it "
            "depends on the input size); crop at model.crop_offsets[name], which comes from the "
            "coordinate maps of the chapter.",
        ),
        Mistake(
            f"every crop uses upscore2's offset, also the final one ({final})",
            _mistake(variant, crop="first"),
            f"each upsampling layer has its own offset: read model.crop_offsets['{final}'] for "
            "the final crop.",
        ),
        Mistake(
            "the skip scaling is missing (this model has skip_scaling=True)",
            _mistake(variant, scaling="none"),
            "the at-once variant multiplies the features by model.scale_pool4 (0.01) and "
            "model.scale_pool3 (0.0001) before score_pool4 / score_pool3; multiply by "
            "model.scale_* always (it is 1.0 when skip_scaling=False).",
        ),
        Mistake(
            "the paper's skip scales are applied although this model has skip_scaling=False",
            _mistake(variant, scaling="always"),
            "use the model's own model.scale_pool4 / model.scale_pool3, not fixed numbers: "
            "they are 1.0 unless the model was built with skip_scaling=True.",
        ),
        *(
            Mistake(
                "F.interpolate is used instead of the model's transposed convolutions",
                _mistake(variant, upsample="interpolate", align_corners=corners),
                "upsample with the model's layers (model.upscore2(h), ...): they are learned, "
                "so after training they are no longer bilinear interpolation.",
            )
            for corners in (False, True)
        ),
        Mistake(
            f"the final crop to the input size is missing ({final}'s output is returned)",
            _mistake(variant, final_crop=False),
            f"{final} returns a map a little larger than the input: crop it to size at "
            f"model.crop_offsets['{final}'].",
        ),
    ]


# ----------------------------------------------------------------------------- errors


_CHANNELS = "to have {k} channels, but got {twice} channels"
_SIZE_CLASH = "must match the size of tensor b"


def _explain_errors(student: Callable[..., Any], variant: str) -> Callable[..., Any]:
    """Run ``student`` without autograd; name the typical mistakes behind its errors.

    Two mistakes cannot produce an output at all: concatenating the branches (the next
    upsampling layer then sees twice the channels) and adding maps of different sizes
    (fusing before upsampling, or without the crop). Their errors get a diagnosis line.
    """

    def checked(*args: Any) -> Any:
        __tracebackhide__ = True
        try:
            with torch.no_grad():
                return student(*args)
        except RuntimeError as err:
            text = str(err)
            if _CHANNELS.format(k=NUM_CLASSES, twice=2 * NUM_CLASSES) in text:
                diagnosis = (
                    "the branches were concatenated (torch.cat) instead of summed; FCN fuses by "
                    "element-wise sum, so the upsampling layers see num_classes channels: h + score"
                )
            elif _SIZE_CLASH in text:
                up = " or ".join(_LAYERS[variant]["ups"])
                diagnosis = (
                    "score maps of different sizes were added: a skip is fused before the coarser "
                    f"scores are upsampled 2x ({up}), or the upsampled map is not cropped to the "
                    "skip's size at model.crop_offsets[name]"
                )
            else:
                raise
            raise RuntimeError(f"{text}\ndiagnosis: this is a typical mistake: {diagnosis}.") \
                from err

    return checked


# ----------------------------------------------------------------------------- checkers


def _check_fusion(variant: str, func_name: str, student: Callable[..., torch.Tensor]) -> None:
    __tracebackhide__ = True
    cases, expected = _make_cases(variant)
    skips = " and ".join(f"score_{s}" for s in _LAYERS[variant]["skips"])
    run_checks(
        func_name,
        _explain_errors(student, variant) if callable(student) else student,
        lambda model, score_fr, *rest: expected[id(score_fr)],
        cases,
        reference_name=f"fcn_course.models.FCN{variant}.forward",
        mistakes=_mistakes(variant),
        general_hint=(
            "start from score_fr; for each skip: upsample 2x with the model's layer, crop to "
            f"the skip's size at model.crop_offsets[layer], add the skip's scores ({skips}, of "
            f"the features times model.scale_*); then upsample with {_LAYERS[variant]['final']} "
            "and crop to size."
        ),
    )


def check_fcn16s_fusion(student: Callable[..., torch.Tensor]) -> None:
    """Check a student's ``fuse_fcn16s(model, score_fr, pool4, size)`` against ``FCN16s``.

    ``model`` is an :class:`~fcn_course.models.FCN16s`, ``score_fr`` the coarse scores
    ``(N, K, H/32, W/32)``, ``pool4`` the backbone's features ``(N, C4, H/16, W/16)`` and
    ``size`` the input's ``(H, W)``; the answer is the logits ``(N, K, H, W)`` that
    ``model(x)`` returns. Chapter "Skip connections: FCN-16s and FCN-8s".
    """
    __tracebackhide__ = True
    _check_fusion("16s", "fuse_fcn16s", student)


def check_fcn8s_fusion(student: Callable[..., torch.Tensor]) -> None:
    """Check a student's ``fuse_fcn8s(model, score_fr, pool4, pool3, size)`` against ``FCN8s``.

    As :func:`check_fcn16s_fusion`, with an :class:`~fcn_course.models.FCN8s` and the
    ``pool3`` features ``(N, C3, H/8, W/8)`` as well. Chapter "Skip connections: FCN-16s
    and FCN-8s".
    """
    __tracebackhide__ = True
    _check_fusion("8s", "fuse_fcn8s", student)
