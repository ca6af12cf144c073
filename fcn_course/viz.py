"""Pictures of segmentations: one palette, coloured masks, overlays, grids, error maps, curves.

Every figure of the book draws masks through this file so that a class has the same colour
in every chapter. The palette is PASCAL VOC's: background black, then the familiar dark red,
green, olive, ...; void pixels (``ignore_index``) are VOC's light beige :data:`VOID_COLOR`,
a colour no class gets. Functions return uint8 images or matplotlib Figures and never call
``plt.show()``; the Figures are not registered with pyplot, so they do not pile up in a loop
and a notebook shows the one a cell returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import draw_segmentation_masks

from fcn_course._validation import check_int, check_tensor, describe, fail
from fcn_course.data.voc import voc_palette

__all__ = [
    "CORRECT_COLOR",
    "VOID_COLOR",
    "WRONG_COLOR",
    "colorize",
    "error_map",
    "overlay",
    "palette",
    "plot_curves",
    "prediction_grid",
    "show_pairs",
]


_VOC = voc_palette()  # PASCAL VOC's 256 colours; label 255 (void) is (224, 224, 192)

VOID_COLOR: tuple[int, int, int] = tuple(_VOC[255].tolist())  # (224, 224, 192)
CORRECT_COLOR: tuple[int, int, int] = (0, 0, 0)
WRONG_COLOR: tuple[int, int, int] = (220, 50, 47)

# A float image may stray this far outside [0, 1] from rounding before it is called unnormalised.
_RANGE_TOLERANCE = 1e-3


def palette(num_classes: int) -> torch.Tensor:
    """The course's class colours: uint8 ``(num_classes, 3)``, class 0 (background) black.

    The colours are PASCAL VOC's, so no class shares :data:`VOID_COLOR` (VOC's colour of
    label 255); at most 255 classes.
    """
    check_int(
        "palette()", "num_classes", num_classes, minimum=1,
        fix="pass the number of classes, background included",
    )
    if num_classes > 255:
        raise fail(
            "palette()", "num_classes", "at most 255 classes (label 255 is void)",
            repr(num_classes), "pass your own (num_classes, 3) uint8 palette to colorize()",
        )
    return _VOC[:num_classes].clone()


def _as_tensor(value: Any) -> Any:
    """Convert a numpy array to a CPU tensor; anything else is returned for validation."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return value


def _check_mask(where: str, name: str, mask: Any, *, ndim: int | Sequence[int]) -> torch.Tensor:
    """Return ``mask`` as a CPU integer tensor of rank ``ndim``."""
    mask = _as_tensor(mask)
    hint = "(H, W)" if ndim == 2 else "(N, H, W)" if ndim == 3 else "(..., H, W)"
    check_tensor(where, name, mask, ndim=ndim, shape_hint=hint, floating=False)
    if mask.dtype == torch.bool:
        raise fail(where, name, "integer labels", describe(mask), "call .long() on it",
                   error=TypeError)
    return mask.detach().cpu().long()


def _check_palette(where: str, colors: Any) -> torch.Tensor:
    """Return ``colors`` as uint8 ``(K, 3)``; accepts a tensor, an array or a list of RGB tuples."""
    if not isinstance(colors, torch.Tensor):
        try:
            colors = torch.as_tensor(np.asarray(colors))
        except (TypeError, ValueError) as err:
            raise fail(where, "palette", "a (K, 3) uint8 array of RGB colours", describe(colors),
                       "use fcn_course.viz.palette(num_classes)", error=TypeError) from err
    if colors.ndim != 2 or colors.shape[1] != 3 or colors.shape[0] == 0:
        raise fail(where, "palette", "a (K, 3) array of RGB colours", describe(colors),
                   "use fcn_course.viz.palette(num_classes)")
    if colors.dtype != torch.uint8:
        if colors.is_floating_point() or bool(((colors < 0) | (colors > 255)).any()):
            raise fail(where, "palette", "uint8 RGB values in 0..255", describe(colors),
                       "scale float colours with (c * 255).round().to(torch.uint8)")
        colors = colors.to(torch.uint8)
    return colors.cpu()


def _check_labels_fit(
    where: str, name: str, mask: torch.Tensor, num_colors: int, ignore_index: int
) -> None:
    """Raise if ``mask`` has a label without a colour (void aside)."""
    bad = (mask != ignore_index) & ((mask < 0) | (mask >= num_colors))
    if bool(bad.any()):
        values = set(mask[bad].unique().tolist())
        raise fail(
            where, name, f"labels in range({num_colors}) or ignore_index={ignore_index}",
            f"values {values}",
            "pass a palette with a colour for every class, or the right ignore_index",
        )


def colorize(
    mask: torch.Tensor,
    palette: torch.Tensor | Sequence[Sequence[int]] | None = None,
    *,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Colour a label map: uint8 ``(..., H, W, 3)`` from labels ``(..., H, W)``.

    Void pixels get :data:`VOID_COLOR`. ``palette`` defaults to the course's
    (:func:`palette`); a custom one is ``(K, 3)`` uint8.
    """
    where = "colorize()"
    check_int(where, "ignore_index", ignore_index)
    mask = _check_mask(where, "mask", mask, ndim=(2, 3, 4))
    colors = _VOC[:255] if palette is None else _check_palette(where, palette)
    _check_labels_fit(where, "mask", mask, colors.shape[0], ignore_index)
    void = mask == ignore_index
    out = colors[torch.where(void, 0, mask)]  # (..., H, W, 3)
    out[void] = torch.tensor(VOID_COLOR, dtype=torch.uint8)
    return out


def _image_uint8(where: str, name: str, image: Any, *, ndim: int) -> torch.Tensor:
    """``image`` ``(..., 3, H, W)`` as a CPU uint8 tensor; floats must lie in [0, 1]."""
    image = _as_tensor(image)
    hint = "(3, H, W)" if ndim == 3 else "(N, 3, H, W)"
    channels_last = (
        isinstance(image, torch.Tensor) and image.ndim == ndim and image.shape[-1] == 3
        and image.shape[-3] != 3
    )
    check_tensor(
        where, name, image, ndim=ndim, shape_hint=hint, channels=3,
        fix="move channels first with image.permute(2, 0, 1)" if channels_last else "",
    )
    image = image.detach().cpu()
    if image.dtype == torch.uint8:
        return image
    if not image.is_floating_point():
        raise fail(where, name, "a uint8 or floating image", describe(image),
                   "call .float() / 255 on it", error=TypeError)
    if image.numel():
        low, high = float(image.min()), float(image.max())
        if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
            raise fail(
                where, name, "float values in [0, 1]", f"values in [{low:.3g}, {high:.3g}]",
                "undo the normalisation first: image * std[:, None, None] + mean[:, None, None]",
            )
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


def overlay(
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    alpha: float = 0.5,
    palette: torch.Tensor | Sequence[Sequence[int]] | None = None,
    ignore_index: int = 255,
    draw_background: bool = False,
) -> torch.Tensor:
    """Blend a coloured mask over an image: uint8 ``(H, W, 3)``, ready for ``imshow``.

    Args:
        image: ``(3, H, W)``, uint8 or float in [0, 1].
        mask: labels ``(H, W)``; void pixels are tinted with :data:`VOID_COLOR`.
        alpha: opacity of the mask, 0 (image only) to 1 (mask only).
        draw_background: also tint class 0; off by default so the scene stays visible.
    """
    where = "overlay()"
    check_int(where, "ignore_index", ignore_index)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise fail(where, "alpha", "a number in [0, 1]", describe(alpha),
                   "0 shows only the image, 1 only the mask")
    pixels = _image_uint8(where, "image", image, ndim=3)
    mask = _check_mask(where, "mask", mask, ndim=2)
    if tuple(mask.shape) != tuple(pixels.shape[-2:]):
        raise fail(where, "mask", f"the image's size (H, W) = {tuple(pixels.shape[-2:])}",
                   describe(mask), "resize the mask with NEAREST, or the image to the mask")
    colors = _VOC[:255] if palette is None else _check_palette(where, palette)
    _check_labels_fit(where, "mask", mask, colors.shape[0], ignore_index)
    labels = [int(v) for v in mask.unique().tolist()]
    drawn = [v for v in labels if v != ignore_index and (draw_background or v != 0)]
    layers = [mask == v for v in drawn]
    tints = [tuple(colors[v].tolist()) for v in drawn]
    if ignore_index in labels:
        layers.append(mask == ignore_index)
        tints.append(VOID_COLOR)
    if not layers:
        return pixels.permute(1, 2, 0).contiguous()
    blended = draw_segmentation_masks(pixels, torch.stack(layers), alpha=float(alpha), colors=tints)
    return blended.permute(1, 2, 0).contiguous()  # (H, W, 3)


def error_map(
    pred: torch.Tensor, target: torch.Tensor, *, ignore_index: int = 255
) -> torch.Tensor:
    """Where a prediction is right or wrong: uint8 ``(..., H, W, 3)``.

    Correct pixels are :data:`CORRECT_COLOR` (black), wrong ones :data:`WRONG_COLOR` (red),
    void ones :data:`VOID_COLOR`. ``pred`` is labels of ``target``'s shape ``(..., H, W)``
    or logits ``(..., C, H, W)``.

    Chapter: "Evaluation".
    """
    where = "error_map()"
    check_int(where, "ignore_index", ignore_index)
    target = _check_mask(where, "target", target, ndim=(2, 3))
    pred = _as_tensor(pred)
    check_tensor(where, "pred", pred, ndim=(target.ndim, target.ndim + 1),
                 shape_hint="labels like target, or logits (..., C, H, W)")
    pred = pred.detach().cpu()
    if pred.ndim == target.ndim + 1:
        check_tensor(where, "pred", pred, floating=True,
                     fix="a tensor with a class dimension is read as logits")
        pred = pred.argmax(dim=-3)
    else:
        pred = _check_mask(where, "pred", pred, ndim=target.ndim)
    if tuple(pred.shape) != tuple(target.shape):
        raise fail(where, "pred", f"labels of the target's shape {tuple(target.shape)}",
                   f"shape {tuple(pred.shape)}", "compare a prediction with its own mask")
    void = target == ignore_index
    out = torch.empty(*target.shape, 3, dtype=torch.uint8)
    out[:] = torch.tensor(WRONG_COLOR, dtype=torch.uint8)
    out[pred == target] = torch.tensor(CORRECT_COLOR, dtype=torch.uint8)
    out[void] = torch.tensor(VOID_COLOR, dtype=torch.uint8)
    return out


def _legend_handles(
    colors: torch.Tensor, names: Sequence[str], with_void: bool
) -> list[Patch]:
    handles = [
        Patch(facecolor=np.asarray(color.tolist()) / 255, edgecolor="0.5", label=name)
        for color, name in zip(colors, names, strict=True)
    ]
    if with_void:
        handles.append(Patch(facecolor=np.asarray(VOID_COLOR) / 255, edgecolor="0.5",
                             label="void"))
    return handles


def prediction_grid(
    images: torch.Tensor,
    masks: torch.Tensor,
    preds: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    palette: torch.Tensor | Sequence[Sequence[int]] | None = None,
    ignore_index: int = 255,
    size: float = 2.2,
) -> Figure:
    """A Figure with one row per image: image, ground truth, then each prediction.

    Args:
        images: ``(N, 3, H, W)``, uint8 or float in [0, 1].
        masks: ground-truth labels ``(N, H, W)``.
        preds: labels ``(N, H, W)`` or logits ``(N, C, H, W)``, or a mapping from a column
            title to such a tensor, e.g. ``{"FCN-32s": p32, "FCN-8s": p8}``.
        class_names: names for the legend; without them classes are numbered.
        size: side of one panel in inches.

    The legend shows every class's colour (and void when a mask has void pixels).

    Chapter: "Evaluation".
    """
    return _grid(
        "prediction_grid()", images, masks, preds, class_names=class_names, palette=palette,
        ignore_index=ignore_index, size=size,
    )


def _grid(
    where: str,
    images: torch.Tensor,
    masks: torch.Tensor,
    preds: torch.Tensor | Mapping[str, torch.Tensor] | None,
    *,
    class_names: Sequence[str] | None,
    palette: torch.Tensor | Sequence[Sequence[int]] | None,
    ignore_index: int,
    size: float,
) -> Figure:
    """Draw :func:`prediction_grid` and :func:`show_pairs`, naming ``where`` in errors."""
    check_int(where, "ignore_index", ignore_index)
    pictures = _image_uint8(where, "images", images, ndim=4)
    masks = _check_mask(where, "masks", masks, ndim=3)
    if tuple(masks.shape) != (pictures.shape[0], *pictures.shape[-2:]):
        raise fail(where, "masks", f"one (H, W) mask per image, shape "
                   f"{(pictures.shape[0], *pictures.shape[-2:])}", describe(masks),
                   "pass the masks of these images, in the same order")
    columns: dict[str, torch.Tensor] = {"image": pictures, "ground truth": masks}
    if preds is not None:
        named = preds if isinstance(preds, Mapping) else {"prediction": preds}
        for title, pred in named.items():
            if title in columns:
                raise fail(where, "preds", "column titles other than 'image' and "
                           "'ground truth'", repr(title), "rename that prediction")
            pred = _as_tensor(pred)
            check_tensor(where, "preds", pred, ndim=(3, 4),
                         shape_hint="(N, H, W) labels or (N, C, H, W) logits")
            pred = pred.detach().cpu()
            if pred.ndim == 4:
                check_tensor(where, "preds", pred, floating=True,
                             fix="4-d predictions are read as logits (N, C, H, W)")
                pred = pred.argmax(dim=1)
            pred = _check_mask(where, "preds", pred, ndim=3)
            if tuple(pred.shape) != tuple(masks.shape):
                raise fail(where, "preds", f"labels of the masks' shape {tuple(masks.shape)}",
                           f"shape {tuple(pred.shape)} for {title!r}",
                           "upsample the predictions to the masks' size")
            columns[str(title)] = pred

    label_maps = [m for title, m in columns.items() if title != "image"]
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
            raise fail(where, "class_names", "a sequence of strings", describe(class_names), "",
                       error=TypeError)
        num_classes = len(class_names)
    else:
        valid = [m[m != ignore_index] for m in label_maps]
        num_classes = 1 + max((int(v.max()) for v in valid if v.numel()), default=0)
    colors = _palette_for(where, palette, num_classes)
    for title, m in columns.items():
        if title != "image":
            _check_labels_fit(where, "masks" if title == "ground truth" else "preds",
                              m, num_classes, ignore_index)
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]

    rows, cols = pictures.shape[0], len(columns)
    fig = Figure(figsize=(size * cols, size * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, (title, data) in enumerate(columns.items()):
        for r in range(rows):
            ax = axes[r, c]
            if title == "image":
                ax.imshow(data[r].permute(1, 2, 0).numpy())
            else:
                ax.imshow(colorize(data[r], colors, ignore_index=ignore_index).numpy(),
                          interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    with_void = bool((masks == ignore_index).any())
    handles = _legend_handles(colors, names, with_void)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               frameon=False)
    return fig


def _palette_for(where: str, colors: Any, num_classes: int) -> torch.Tensor:
    """The given palette (checked to cover ``num_classes``) or the course's, cut to size."""
    if colors is None:
        return palette(num_classes)
    colors = _check_palette(where, colors)
    if colors.shape[0] < num_classes:
        raise fail(where, "palette", f"at least {num_classes} colours", describe(colors),
                   "use fcn_course.viz.palette(num_classes)")
    return colors[:num_classes]


def show_pairs(
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    class_names: Sequence[str] | None = None,
    palette: torch.Tensor | Sequence[Sequence[int]] | None = None,
    ignore_index: int = 255,
    size: float = 2.2,
) -> Figure:
    """A Figure of images ``(N, 3, H, W)`` beside their masks ``(N, H, W)``, with a legend.

    :func:`prediction_grid` without predictions.
    """
    return _grid(
        "show_pairs()", images, masks, None, class_names=class_names, palette=palette,
        ignore_index=ignore_index, size=size,
    )


def plot_curves(history: Mapping[str, Sequence[float]], *, title: str | None = None) -> Figure:
    """Training curves against the epoch: a Figure with a loss panel and a metrics panel.

    ``history`` maps a name to one value per epoch, e.g. ``{"train_loss": [...],
    "val_mean_iou": [...]}``. Names containing "loss" go to the left panel, the others
    (accuracies, IoUs) to the right; a panel with no curve is left out. Series may differ in
    length (e.g. validation every few epochs is recorded as its own list); epochs count from 1.

    Chapter: "Training with a pixel-wise loss".
    """
    where = "plot_curves()"
    if not isinstance(history, Mapping):
        raise fail(where, "history", "a dict of lists, e.g. {'train_loss': [0.9, 0.5]}",
                   describe(history), "", error=TypeError)
    groups: dict[str, dict[str, list[float]]] = {"loss": {}, "score": {}}
    for name, series in history.items():
        if not isinstance(name, str):
            raise fail(where, "history", "string keys", describe(name), "", error=TypeError)
        listlike = isinstance(series, Sequence | np.ndarray | torch.Tensor)
        if isinstance(series, str | bytes) or not listlike:
            raise fail(where, f"history[{name!r}]", "a list of numbers, one per epoch",
                       describe(series), "", error=TypeError)
        try:
            values = [float(v) for v in series]
        except (TypeError, ValueError) as err:
            raise fail(where, f"history[{name!r}]", "a list of numbers, one per epoch",
                       describe(series), "store floats, e.g. loss.item()",
                       error=TypeError) from err
        if values:
            groups["loss" if "loss" in name.lower() else "score"][name] = values
    panels = {kind: curves for kind, curves in groups.items() if curves}
    if not panels:
        raise fail(where, "history", "at least one non-empty list of values", describe(history),
                   "record a value per epoch before plotting")

    fig = Figure(figsize=(4.5 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (kind, curves) in zip(axes, panels.items(), strict=True):
        for name, values in curves.items():
            epochs = range(1, len(values) + 1)
            ax.plot(epochs, values, marker="o" if len(values) < 30 else None, ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title is not None:
        fig.suptitle(title)
    return fig
