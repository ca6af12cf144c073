"""Interactive explorers for the book (ipywidgets), each built on a plain plotting function.

A widget responds only in a running notebook; the built HTML book shows it inert. Every
explorer here is therefore a thin layer of sliders over a pure function that draws one
matplotlib Figure, and a chapter calls that function with fixed values for its static figures.

* :func:`transposed_conv_overlap`, :func:`plot_transposed_conv_overlap` and
  :func:`transposed_conv_explorer`: how many kernel copies land on each output pixel of a
  transposed convolution, and the checkerboard that uneven overlap draws.
  Chapter "Transposed convolution".
* :func:`predict_mask`, :func:`plot_prediction` and :func:`prediction_explorer`: a trained
  model's mask for one image, drawn beside the ground truth with an overlay and an error map,
  and an explorer that switches between images and models. Chapter "Evaluation".
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import nn

from fcn_course import viz
from fcn_course._validation import check_choice, check_int, check_tensor, describe, fail
from fcn_course.metrics import per_image_mean_iou
from fcn_course.models.upsample import conv_transpose_output_size

__all__ = [
    "plot_prediction",
    "plot_transposed_conv_overlap",
    "predict_mask",
    "prediction_explorer",
    "transposed_conv_explorer",
    "transposed_conv_overlap",
]

# Above this output side the counts are not written into the cells (a colour bar is drawn).
_ANNOTATE_UP_TO = 24


def _check_geometry(where: str, size: Any, kernel_size: Any, stride: Any, padding: Any) -> int:
    """Validate one square transposed-convolution geometry; return its output side."""
    check_int(where, "size", size, minimum=1, fix="pass the input side in pixels, e.g. 5")
    check_int(where, "kernel_size", kernel_size, minimum=1, fix="e.g. 3 or 4")
    check_int(where, "stride", stride, minimum=1, fix="e.g. 2 to upsample by two")
    check_int(where, "padding", padding, minimum=0)
    uncropped = (size - 1) * stride + kernel_size
    if uncropped - 2 * padding < 1:
        raise fail(
            where, "padding", f"at most {(uncropped - 1) // 2} for size={size}, "
            f"kernel_size={kernel_size}, stride={stride}, so that the output is not empty",
            repr(padding), "use less padding, a larger kernel or a larger input",
        )
    return conv_transpose_output_size(size, kernel_size, stride, padding)


def _overlap_1d(size: int, kernel_size: int, stride: int) -> np.ndarray:
    """Uncropped 1-d counts: input ``i`` stamps ones on ``[i * stride, i * stride + k)``."""
    counts = np.zeros((size - 1) * stride + kernel_size, dtype=np.int64)
    for i in range(size):
        counts[i * stride : i * stride + kernel_size] += 1
    return counts


def transposed_conv_overlap(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """How many kernel copies land on each output pixel of a square transposed convolution.

    Each of the ``size x size`` inputs stamps a ``kernel_size x kernel_size`` block of ones,
    ``stride`` pixels after its neighbour; ``padding`` pixels are then cut from every border.
    The count is what ``F.conv_transpose2d`` makes of an all-ones input and an all-ones kernel.

    Returns:
        int64 tensor ``(out, out)`` with ``out = (size - 1) * stride - 2 * padding + kernel_size``.

    Chapter: "Transposed convolution".
    """
    out = _check_geometry("transposed_conv_overlap()", size, kernel_size, stride, padding)
    line = _overlap_1d(size, kernel_size, stride)[padding : padding + out]  # (out,)
    # A box kernel is separable, so the 2-d count is the outer product of the 1-d ones.
    return torch.from_numpy(np.outer(line, line))  # (out, out)


def _interior_counts(size: int, kernel_size: int, stride: int) -> list[int]:
    """Distinct 2-d counts away from the borders, where every phase is fully covered."""
    line = _overlap_1d(size, kernel_size, stride)
    # Position o sees every input that could reach it once o >= k - 1 and o // stride <= n - 1.
    inner = line[kernel_size - 1 : min(size * stride, len(line))]
    if len(inner) < stride:  # not even one full period of the pattern
        return []
    values = {int(a) * int(b) for a in inner for b in inner}
    return sorted(values)


def plot_transposed_conv_overlap(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    ax: Axes | None = None,
) -> Figure:
    """Draw :func:`transposed_conv_overlap` as an image, counts written in the cells.

    The title gives the geometry and the output size; the caption says whether the interior
    is covered evenly (``kernel_size`` a multiple of ``stride``) or in a checkerboard.
    Colours run from 0 to ``ceil(kernel_size / stride) ** 2``, so panels of the same kernel
    and stride compare directly.

    Args:
        ax: the Axes to draw into; by default a new Figure (not registered with pyplot) is made.

    Returns:
        the Figure that holds the drawing.

    Chapter: "Transposed convolution".
    """
    where = "plot_transposed_conv_overlap()"
    counts = transposed_conv_overlap(size, kernel_size, stride, padding).numpy()
    if ax is None:
        fig = Figure(figsize=(4.0, 4.0), layout="constrained")
        ax = fig.subplots()
    elif not isinstance(ax, Axes):
        raise fail(where, "ax", "a matplotlib Axes or None", describe(ax),
                   "pass e.g. fig.subplots() or leave it out", error=TypeError)
    out = counts.shape[0]
    top = math.ceil(kernel_size / stride) ** 2
    image = ax.imshow(counts, cmap="viridis", vmin=0, vmax=max(top, 1), interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, out, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, out, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.5 if out > 12 else 1.0)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if out <= _ANNOTATE_UP_TO:
        fontsize = 9 if out <= 12 else 6
        for (row, col), value in np.ndenumerate(counts):
            shade = "black" if value > 0.6 * top else "white"
            ax.text(col, row, str(value), ha="center", va="center", color=shade,
                    fontsize=fontsize)
    else:
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label="kernel copies")
    ax.set_title(f"k={kernel_size}, s={stride}, p={padding}: {size}×{size} → {out}×{out}")
    interior = _interior_counts(size, kernel_size, stride)
    if not interior:
        caption = "no interior: the input is too small"
    elif len(interior) == 1:
        caption = f"interior: even, {interior[0]} copies everywhere"
    else:
        caption = "interior: uneven, " + ", ".join(map(str, interior)) + " copies"
    ax.set_xlabel(caption)
    root = ax.figure.figure  # the top-level Figure, also when ax sits in a SubFigure
    assert isinstance(root, Figure)
    return root


def _figure_output(fig: Figure, text: str) -> dict[str, Any]:
    """A notebook ``display_data`` output holding ``fig`` as a PNG (``text`` as plain text)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "output_type": "display_data",
        "data": {"image/png": data, "text/plain": text},
        "metadata": {},
    }


def transposed_conv_explorer(
    size: int = 4,
    kernel_size: int = 3,
    stride: int = 2,
    padding: int = 0,
) -> widgets.VBox:
    """Sliders for input size, kernel size, stride and padding of a transposed convolution.

    Below the sliders an output area prints the output size (the formula with the numbers
    put in) and draws :func:`plot_transposed_conv_overlap`; it redraws on every slider move.
    A padding that would leave no output is reported there instead of raising. Run it in a
    live notebook: in a static page the sliders do not respond.

    Returns:
        a ``VBox`` of an ``HBox`` of four ``IntSlider`` (descriptions ``size``, ``kernel``,
        ``stride``, ``padding``) and an ``Output``.

    Chapter: "Transposed convolution".
    """
    where = "transposed_conv_explorer()"
    limits = {"size": (1, 12), "kernel": (1, 8), "stride": (1, 4), "padding": (0, 4)}
    start = {"size": size, "kernel": kernel_size, "stride": stride, "padding": padding}
    names = {"size": "size", "kernel": "kernel_size", "stride": "stride", "padding": "padding"}
    for key, value in start.items():
        low, high = limits[key]
        check_int(where, names[key], value, minimum=low)
        if value > high:
            raise fail(where, names[key], f"an int in {low}..{high} (the slider's range)",
                       repr(value), f"start at most at {high} and move the slider from there")
    _check_geometry(where, size, kernel_size, stride, padding)

    sliders = {
        key: widgets.IntSlider(
            value=start[key], min=low, max=high, description=key, continuous_update=False,
            layout=widgets.Layout(width="220px"), style={"description_width": "55px"},
        )
        for key, (low, high) in limits.items()
    }
    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        n, k, s, p = (sliders[key].value for key in ("size", "kernel", "stride", "padding"))
        full = (n - 1) * s + k
        if full - 2 * p < 1:
            text = (f"output size: ({n} - 1) * {s} + {k} - 2 * {p} = {full - 2 * p}: "
                    f"empty; padding can be at most {(full - 1) // 2} here\n")
            output.outputs = ({"output_type": "stream", "name": "stdout", "text": text},)
            return
        out = conv_transpose_output_size(n, k, s, p)
        text = f"output size: ({n} - 1) * {s} + {k} - 2 * {p} = {out}, so {n}x{n} -> {out}x{out}\n"
        fig = plot_transposed_conv_overlap(n, k, s, p)
        output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": text},
            _figure_output(fig, f"<overlap counts, k={k}, s={s}, p={p}>"),
        )

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(sliders.values())), output])


# Chapter "Evaluation": one model's prediction for one image, and an explorer over them.

_PANELS = ("image", "ground truth", "prediction", "overlay", "errors")
"""The panels of :func:`plot_prediction`, left to right."""


def _check_model(where: str, name: str, model: Any) -> nn.Module:
    """Return ``model`` if it is an ``nn.Module``."""
    if not isinstance(model, nn.Module):
        raise fail(where, name, "a torch.nn.Module (a segmentation model)", describe(model),
                   "pass e.g. zoo.trained('fcn8s')", error=TypeError)
    return model


def _check_image(where: str, name: str, image: Any) -> torch.Tensor:
    """Return ``image`` if it is one float image ``(3, H, W)``."""
    fix = ""
    if isinstance(image, torch.Tensor):
        if image.ndim == 4:
            fix = "pass one image, e.g. images[0]"
        elif not image.is_floating_point():
            fix = "convert it with image.float() / 255"
    check_tensor(where, name, image, ndim=3, shape_hint="(3, H, W)", channels=3, floating=True,
                 fix=fix)
    return image


def _check_mask(where: str, name: str, mask: Any, image: torch.Tensor) -> torch.Tensor:
    """Return ``mask`` as a CPU int64 ``(H, W)`` label map of ``image``'s size."""
    check_tensor(where, name, mask, ndim=2, shape_hint="(H, W)", floating=False,
                 fix="pass one mask, e.g. masks[0]" if isinstance(mask, torch.Tensor)
                 and mask.ndim == 3 else "")
    if mask.dtype == torch.bool:
        raise fail(where, name, "integer labels (H, W)", describe(mask), "call .long() on it",
                   error=TypeError)
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        raise fail(where, name, f"the image's size (H, W) = {tuple(image.shape[-2:])}",
                   describe(mask), "pass the mask that belongs to this image")
    return mask.detach().cpu().long()


def _check_alpha(where: str, alpha: Any) -> float:
    """Return ``alpha`` if it is a number in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise fail(where, "alpha", "a number in [0, 1]", describe(alpha),
                   "0 shows only the image, 1 only the mask")
    return float(alpha)


def _check_class_names(where: str, class_names: Any, num_classes: int) -> list[str] | None:
    """Return ``class_names`` as a list if it names each of the model's ``num_classes``."""
    if class_names is None:
        return None
    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or not all(
        isinstance(c, str) for c in class_names
    ):
        raise fail(where, "class_names", "a sequence of strings", describe(class_names),
                   "e.g. dataset.classes", error=TypeError)
    if len(class_names) != num_classes:
        raise fail(where, "class_names", f"{num_classes} names, one per class the model scores",
                   f"{len(class_names)} names", "give one name per class, background included")
    return list(class_names)


def _predict(where: str, model: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``model(image[None]).argmax(1)[0]`` on the CPU, and the number of classes it scores.

    The model runs in eval mode without gradients (its mode is restored), on the device of its
    parameters; a torchvision segmentation model's ``{"out": logits}`` is read as its logits.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else image.device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(image[None].to(device))  # (1, C, H, W)
    finally:
        model.train(was_training)
    if isinstance(logits, Mapping) and "out" in logits:
        logits = logits["out"]
    height, width = image.shape[-2:]
    if (
        not isinstance(logits, torch.Tensor) or logits.ndim != 4 or logits.shape[0] != 1
        or tuple(logits.shape[-2:]) != (height, width) or not logits.is_floating_point()
    ):
        raise fail(where, "model", f"class scores (1, C, {height}, {width}) for an image "
                   f"(1, 3, {height}, {width})", describe(logits),
                   "pass a segmentation model whose logits have the input's size, e.g. fcn8s")
    return logits.argmax(dim=1)[0].cpu(), int(logits.shape[1])  # (H, W) labels, C


def _check_mask_labels(
    where: str, name: str, mask: torch.Tensor, num_classes: int, ignore_index: int
) -> None:
    """Raise if ``mask`` has a label the model cannot predict (void aside)."""
    bad = (mask != ignore_index) & ((mask < 0) | (mask >= num_classes))
    if bool(bad.any()):
        values = set(mask[bad].unique().tolist())
        raise fail(where, name, f"labels in range({num_classes}) (the model's classes) or "
                   f"ignore_index={ignore_index}", f"values {values}",
                   "pair the model with masks of its own classes, or pass the right ignore_index")


def _prediction_scores(
    labels: torch.Tensor, mask: torch.Tensor, num_classes: int, ignore_index: int
) -> tuple[float, float]:
    """Pixel accuracy and mean IU of one image's prediction (NaN without labelled pixels)."""
    valid = mask != ignore_index
    accuracy = float((labels == mask)[valid].double().mean()) if bool(valid.any()) else math.nan
    mean_iou = per_image_mean_iou(labels[None], mask[None], num_classes=num_classes,
                                  ignore_index=ignore_index)
    return accuracy, float(mean_iou[0])


def _draw_prediction(
    image: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    class_names: list[str] | None,
    title: str | None,
    alpha: float,
    ignore_index: int,
    size: float,
) -> tuple[Figure, float, float]:
    """The Figure of :func:`plot_prediction` from labels already predicted, and its two scores."""
    colors = viz.palette(num_classes)  # (C, 3)
    pictures = {
        "image": image.detach().cpu().clamp(0, 1).permute(1, 2, 0),  # (H, W, 3)
        "ground truth": viz.colorize(mask, colors, ignore_index=ignore_index),
        "prediction": viz.colorize(labels, colors, ignore_index=ignore_index),
        "overlay": viz.overlay(image, labels, alpha=alpha, palette=colors,
                               ignore_index=ignore_index),
        "errors": viz.error_map(labels, mask, ignore_index=ignore_index),
    }
    accuracy, mean_iou = _prediction_scores(labels, mask, num_classes, ignore_index)
    fig = Figure(figsize=(size * len(_PANELS), size + 1.0), layout="constrained")
    axes = fig.subplots(1, len(_PANELS))
    for ax, (name, picture) in zip(axes, pictures.items(), strict=True):
        ax.imshow(picture.numpy(), interpolation="nearest")
        ax.set_title("errors (red)" if name == "errors" else name)
        ax.set_axis_off()
    head = f"{title}: " if title else ""
    fig.suptitle(f"{head}pixel accuracy {accuracy:.3f}, mean IU {mean_iou:.3f}")
    names = class_names or [str(c) for c in range(num_classes)]
    handles = [Patch(facecolor=np.asarray(color.tolist()) / 255, edgecolor="0.5", label=name)
               for color, name in zip(colors, names, strict=True)]
    if bool((mask == ignore_index).any()):
        handles.append(Patch(facecolor=np.asarray(viz.VOID_COLOR) / 255, edgecolor="0.5",
                             label="void"))
    handles.append(Patch(facecolor=np.asarray(viz.WRONG_COLOR) / 255, edgecolor="0.5",
                         label="wrong"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 10),
               frameon=False)
    return fig, accuracy, mean_iou


def predict_mask(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """A model's predicted labels for one image: ``model(image[None]).argmax(1)[0]``, ``(H, W)``.

    Args:
        model: a segmentation model mapping ``(N, 3, H, W)`` to logits ``(N, C, H, W)``; it runs
            in eval mode without gradients (its mode is restored), on its own device.
        image: float ``(3, H, W)``, as the data set gives it.

    Returns:
        int64 labels on the CPU.

    Chapter: "Evaluation".
    """
    where = "predict_mask()"
    _check_model(where, "model", model)
    _check_image(where, "image", image)
    return _predict(where, model, image)[0]


def plot_prediction(
    model: nn.Module,
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    alpha: float = 0.5,
    ignore_index: int = 255,
    size: float = 2.4,
) -> Figure:
    """Draw one image, its ground truth, the model's prediction, an overlay and an error map.

    The prediction is :func:`predict_mask`; the overlay blends it over the image
    (:func:`fcn_course.viz.overlay`), the error map marks wrong pixels red and void ones beige
    (:func:`fcn_course.viz.error_map`). The title gives the image's pixel accuracy and mean IU
    (:func:`fcn_course.metrics.per_image_mean_iou`); the legend names the classes.

    Args:
        image: float ``(3, H, W)`` in [0, 1]; mask: its labels ``(H, W)``, void = ``ignore_index``.
        class_names: one name per class the model scores; without them classes are numbered.
        title: written before the scores, e.g. the model's name.
        size: side of one panel in inches.

    Returns:
        a Figure (not registered with pyplot) of five panels, in the order image, ground
        truth, prediction, overlay, errors.

    Chapter: "Evaluation".
    """
    where = "plot_prediction()"
    _check_model(where, "model", model)
    _check_image(where, "image", image)
    mask = _check_mask(where, "mask", mask, image)
    check_int(where, "ignore_index", ignore_index)
    alpha = _check_alpha(where, alpha)
    if title is not None and not isinstance(title, str):
        raise fail(where, "title", "a string or None", describe(title), "", error=TypeError)
    if isinstance(size, bool) or not isinstance(size, int | float) or size <= 0:
        raise fail(where, "size", "a positive number of inches", describe(size), "e.g. 2.4")
    labels, num_classes = _predict(where, model, image)
    names = _check_class_names(where, class_names, num_classes)
    _check_mask_labels(where, "mask", mask, num_classes, ignore_index)
    fig, _, _ = _draw_prediction(
        image, mask, labels, num_classes=num_classes, class_names=names, title=title,
        alpha=alpha, ignore_index=ignore_index, size=float(size),
    )
    return fig


def prediction_explorer(
    models: Mapping[str, nn.Module],
    dataset: Any,
    *,
    index: int = 0,
    model: str | None = None,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.5,
    ignore_index: int = 255,
) -> widgets.VBox:
    """Buttons to pick a model, a slider to pick an image, and :func:`plot_prediction` below.

    Each prediction is computed the first time its (model, image) pair is shown and kept, so
    switching back and forth between models or images is instant. Above the figure a line
    gives the image's index, the model's name, its pixel accuracy and mean IU. Run it in a live
    notebook: in a static page the controls do not respond.

    Args:
        models: names to models, e.g. ``{"FCN-32s": m32, "FCN-16s": m16, "FCN-8s": m8}``.
        dataset: a sequence of ``(image, mask)`` pairs, e.g. a
            :class:`~fcn_course.data.ShapesSegmentation`.
        index: the image shown first; model: the name of the model shown first (the first one
            by default).
        class_names: names for the legend; by default ``dataset.classes`` when it has them.

    Returns:
        a ``VBox`` of an ``HBox`` (a ``ToggleButtons`` described ``model`` and an ``IntSlider``
        described ``image``) and an ``Output``.

    Chapter: "Evaluation".
    """
    where = "prediction_explorer()"
    if not isinstance(models, Mapping):
        raise fail(where, "models", "a mapping from names to models", describe(models),
                   "pass e.g. {'FCN-8s': zoo.trained('fcn8s')}", error=TypeError)
    if not models:
        raise fail(where, "models", "at least one model", "an empty mapping",
                   "pass e.g. {'FCN-8s': zoo.trained('fcn8s')}")
    for name, net in models.items():
        if not isinstance(name, str):
            raise fail(where, "models", "string names as keys", describe(name),
                       "name each model, e.g. 'FCN-8s'", error=TypeError)
        _check_model(where, f"models[{name!r}]", net)
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise fail(where, "dataset", "a data set of (image, mask) pairs", describe(dataset),
                   "pass e.g. ShapesSegmentation('test')", error=TypeError)
    length = len(dataset)
    if length < 1:
        raise fail(where, "dataset", "at least one (image, mask) pair", "an empty data set",
                   "pass a data set that holds images")
    check_int(where, "index", index, minimum=0, fix=f"pass an image index in 0..{length - 1}")
    if index >= length:
        raise fail(where, "index", f"an image index in 0..{length - 1}", repr(index),
                   f"the data set holds {length} images")
    model = next(iter(models)) if model is None else model
    check_choice(where, "model", model, list(models), fix="name one of the models given")
    alpha = _check_alpha(where, alpha)
    check_int(where, "ignore_index", ignore_index)
    if class_names is None:
        class_names = getattr(dataset, "classes", None)

    cache: dict[tuple[str, int], tuple[torch.Tensor, int]] = {}

    def draw(name: str, i: int) -> tuple[str, Figure]:
        item = dataset[i]
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise fail(where, "dataset", "items that are (image, mask) pairs",
                       f"item {i}: {describe(item)}", "pass a segmentation data set")
        image = _check_image(where, f"dataset[{i}] image", item[0])
        mask = _check_mask(where, f"dataset[{i}] mask", item[1], image)
        if (name, i) not in cache:
            cache[name, i] = _predict(where, models[name], image)
        labels, num_classes = cache[name, i]
        names = _check_class_names(where, class_names, num_classes)
        _check_mask_labels(where, f"dataset[{i}] mask", mask, num_classes, ignore_index)
        fig, accuracy, mean_iou = _draw_prediction(
            image, mask, labels, num_classes=num_classes, class_names=names,
            title=f"{name}, image {i}", alpha=alpha, ignore_index=ignore_index, size=2.4,
        )
        text = f"image {i}, {name}: pixel accuracy {accuracy:.3f}, mean IU {mean_iou:.3f}\n"
        return text, fig

    chooser = widgets.ToggleButtons(options=list(models), value=model, description="model",
                                    style={"description_width": "45px"})
    slider = widgets.IntSlider(
        value=index, min=0, max=length - 1, description="image", continuous_update=False,
        layout=widgets.Layout(width="320px"), style={"description_width": "45px"},
    )
    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        name, i = chooser.value, slider.value
        text, fig = draw(name, i)
        output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": text},
            _figure_output(fig, f"<prediction of {name} for image {i}>"),
        )

    chooser.observe(redraw, names="value")
    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([chooser, slider]), output])
