"""Models by name, and the plain-data "spec" a checkpoint keeps to rebuild its model.

Chapter "Training with a pixel-wise loss". A checkpoint holds weights (a ``state_dict``)
but not code, and it is loaded with ``torch.load(weights_only=True)``, which refuses
pickled modules. So the training loop stores, next to the weights, a *spec*: the builder's
name and its keyword arguments as plain data (str, int, float, bool, None, lists and
dicts). :func:`model_from_spec` builds a model of the same architecture from it, and the
checkpoint's ``model_state`` then fills in the weights::

    spec = model_spec("fcn8s", num_classes=7, backbone=pretrained_classifier)
    model = model_from_spec(spec)               # same shapes, fresh weights
    model.load_state_dict(checkpoint["model_state"])

A backbone given as a module (for example a pre-trained ``course_vgg``) cannot go into a
spec; it is recorded by its architecture (:func:`backbone_spec`), since its weights are part
of the FCN's ``state_dict`` anyway. For the same reason ``weights_backbone`` is left out.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from fcn_course._validation import check_choice, describe, fail
from fcn_course.models.convolutionalize import ConvolutionalizedVGG
from fcn_course.models.deeplab import deeplab
from fcn_course.models.fcn import fcn8s, fcn16s, fcn32s
from fcn_course.models.segnet import segnet
from fcn_course.models.unet import unet
from fcn_course.models.vgg import CourseVGG, make_layers, vgg_from_torchvision

__all__ = [
    "MODEL_BUILDERS",
    "backbone_from_spec",
    "backbone_spec",
    "build_model",
    "model_from_spec",
    "model_spec",
]

#: Builder of every model the command line and checkpoints know, by name. Each builder
#: takes keyword arguments only, among them ``num_classes``.
MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "fcn32s": fcn32s,
    "fcn16s": fcn16s,
    "fcn8s": fcn8s,
    "unet": unet,
    "segnet": segnet,
    "deeplab": deeplab,
}

# Keyword arguments that only say where initial weights come from: the checkpoint's
# state_dict replaces them, and they may not be plain data (torchvision weight enums).
_WEIGHT_SOURCES = ("weights_backbone",)

_BACKBONE_KIND = "CourseVGG"


def _builder(where: str, name: Any) -> Callable[..., nn.Module]:
    if not isinstance(name, str):
        raise fail(where, "name", "a model name (str)", describe(name),
                   f"one of {', '.join(map(repr, MODEL_BUILDERS))}", error=TypeError)
    check_choice(where, "name", name, MODEL_BUILDERS)
    return MODEL_BUILDERS[name]


def _check_kwargs(where: str, name: str, builder: Callable[..., nn.Module], kwargs: Any) -> None:
    """Raise a TypeError naming the valid keywords when ``kwargs`` has one the builder lacks."""
    parameters = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise fail(
            where, "kwargs", f"keywords of {name}(): {', '.join(parameters)}",
            f"unknown {', '.join(unknown)}", "check the spelling", error=TypeError,
        )


# ----------------------------------------------------------------------------- backbones


def backbone_spec(backbone: nn.Module) -> dict[str, Any]:
    """The architecture of a classifier backbone as plain data (no weights).

    Accepts a :class:`~fcn_course.models.vgg.CourseVGG` (e.g. ``course_vgg(...)``), a
    torchvision ``VGG`` or a :class:`~fcn_course.models.convolutionalize.ConvolutionalizedVGG`.
    The layer table is read from the modules (an int per 3x3 convolution, ``"M"`` per
    pool), so a classifier of any widths and depths is described, and
    :func:`backbone_from_spec` rebuilds one with the same parameter names and shapes.
    """
    where = "backbone_spec()"
    from torchvision.models import VGG

    if isinstance(backbone, VGG):
        backbone = vgg_from_torchvision(backbone)
    if isinstance(backbone, CourseVGG):
        features = backbone.features
        fc6, fc7, fc8 = (backbone.classifier.fc6, backbone.classifier.fc7,
                         backbone.classifier.fc8)
        fc_width, num_classes = fc6.out_features, fc8.out_features
        dropout = backbone.classifier.drop6.p
        if fc7.out_features != fc_width:
            raise fail(where, "backbone", "fc6 and fc7 of the same width",
                       f"{fc_width} and {fc7.out_features}", "")
    elif isinstance(backbone, ConvolutionalizedVGG):
        features = backbone.features
        fc_width = backbone.fc6.out_channels
        # An FCN drops fc8; its class count then matters to nothing the FCN keeps.
        num_classes = backbone.fc8.out_channels if backbone.fc8 is not None else 1
        dropout = backbone.drop6.p
    else:
        raise fail(
            where, "backbone", "a CourseVGG, a torchvision VGG or a ConvolutionalizedVGG",
            describe(backbone), "or pass the backbone by name ('course', 'vgg16')",
            error=TypeError,
        )
    cfg: list[int | str] = []
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            cfg.append(int(layer.out_channels))
        elif isinstance(layer, nn.MaxPool2d):
            cfg.append("M")
    convs = [layer for layer in features if isinstance(layer, nn.Conv2d)]
    return {
        "kind": _BACKBONE_KIND,
        "cfg": cfg,
        "batch_norm": any(isinstance(layer, nn.BatchNorm2d) for layer in features),
        "in_channels": int(convs[0].in_channels),
        "input_size": int(backbone.input_size),
        "fc_width": int(fc_width),
        "num_classes": int(num_classes),
        "dropout": float(dropout),
    }


def backbone_from_spec(spec: Mapping[str, Any]) -> CourseVGG:
    """A fresh classifier of the architecture :func:`backbone_spec` recorded."""
    where = "backbone_from_spec()"
    keys = ("kind", "cfg", "batch_norm", "in_channels", "input_size", "fc_width",
            "num_classes", "dropout")
    if not isinstance(spec, Mapping):
        raise fail(where, "spec", "a dict from backbone_spec()", describe(spec), "",
                   error=TypeError)
    missing = [k for k in keys if k not in spec]
    if missing or spec["kind"] != _BACKBONE_KIND:
        raise fail(where, "spec", f"a dict with keys {', '.join(keys)} and kind "
                   f"{_BACKBONE_KIND!r}", describe(dict(spec)),
                   f"missing {missing}" if missing else "write it with backbone_spec()")
    features, info = make_layers(list(spec["cfg"]), batch_norm=bool(spec["batch_norm"]),
                                 in_channels=spec["in_channels"])
    return CourseVGG(
        features, info, num_classes=spec["num_classes"], input_size=spec["input_size"],
        fc_width=spec["fc_width"], dropout=spec["dropout"],
    )


# ----------------------------------------------------------------------------- models


def _plain(where: str, name: str, value: Any) -> Any:
    """``value`` as str/int/float/bool/None, lists and str-keyed dicts, or a TypeError."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise fail(where, name, "a finite number", repr(value), "")
        return value
    if isinstance(value, list | tuple):
        return [_plain(where, f"{name}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(where, f"{name}[{k!r}]", v) for k, v in value.items()}
    raise fail(
        where, name, "plain data (str, int, float, bool, None, lists, dicts)", describe(value),
        "a checkpoint can only hold plain data; pass modules only as 'backbone'",
        error=TypeError,
    )


def model_spec(name: str, **kwargs: Any) -> dict[str, Any]:
    """``{"name": name, "kwargs": {...}}`` as plain data, from which :func:`model_from_spec`
    rebuilds the architecture of ``build_model(name, **kwargs)``.

    A ``backbone`` module is replaced by :func:`backbone_spec` of it; ``weights_backbone``
    is dropped (the weights travel in the checkpoint's ``state_dict``).
    """
    where = "model_spec()"
    builder = _builder(where, name)
    _check_kwargs(where, name, builder, kwargs)
    plain: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _WEIGHT_SOURCES:
            continue
        if key == "backbone" and isinstance(value, nn.Module):
            plain[key] = backbone_spec(value)
        else:
            plain[key] = _plain(where, key, value)
    return {"name": name, "kwargs": plain}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """The model ``name`` (see :data:`MODEL_BUILDERS`), built with ``kwargs``.

    ``backbone`` may also be a dict written by :func:`backbone_spec`, as found in a spec.
    """
    where = "build_model()"
    builder = _builder(where, name)
    _check_kwargs(where, name, builder, kwargs)
    backbone = kwargs.get("backbone")
    if isinstance(backbone, Mapping):
        kwargs = {**kwargs, "backbone": backbone_from_spec(backbone)}
    return builder(**kwargs)


def model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """A fresh model (random or initial weights) of the architecture :func:`model_spec` recorded."""
    where = "model_from_spec()"
    if (
        not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str)
        or not isinstance(spec.get("kwargs", {}), Mapping)
    ):
        raise fail(
            where, "spec", "a dict {'name': str, 'kwargs': dict} from model_spec()",
            describe(spec), "a checkpoint written by fit(..., model_spec=...) holds one",
            error=TypeError,
        )
    return build_model(spec["name"], **dict(spec.get("kwargs", {})))

