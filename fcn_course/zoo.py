"""Trained course models, saved on disk: what the book's chapters load instead of training.

Training the benchmark's models takes minutes on a CPU, longer than a chapter may take to run.
So every trained model the book shows is made once, by the recipe of ``fcn-course bench``
(:class:`fcn_course.bench.BenchConfig`), and saved in a cache folder; a chapter asks for it
by name and gets the saved copy::

    from fcn_course import zoo
    classifier = zoo.classifier()          # the pre-trained course classifier (chapter 2)
    model = zoo.trained("fcn8s")           # FCN-8s trained from it (chapters 5 and 7)
    report = zoo.benchmark()               # the measured table of chapter 5

A model that is not in the cache yet is trained on the spot (and saved), so every chapter also
runs on its own; ``fcn-course prepare`` (which ``make book`` runs first) trains them all ahead
of the build.

Two environment variables choose what is loaded:

``FCN_COURSE_CACHE``
    the cache folder (default ``~/.cache/fcn-course``);
``FCN_COURSE_PROFILE``
    ``full`` (default): the benchmark's recipe; ``quick``: the same code on a few tiny images
    for one epoch, so that the test suite can build the whole book in seconds. Numbers made
    with ``quick`` mean nothing; the book is published with ``full``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from fcn_course._validation import check_choice
from fcn_course.bench import (
    AFTER_FCN,
    BUILDERS,
    RECIPE_VERSION,
    BenchConfig,
    LazyData,
    load_or_train_classifier,
    load_or_train_model,
)
from fcn_course.bench import run_benchmark as _run_benchmark
from fcn_course.data import ShapesSegmentation
from fcn_course.pretrain import materialize
from fcn_course.train import load_checkpoint

__all__ = ["PROFILES", "benchmark", "cache_dir", "classifier", "config", "history", "prepare",
           "profile", "trained"]

_ALL = ("fcn32s", "fcn16s", "fcn8s", *AFTER_FCN)

PROFILES: dict[str, BenchConfig] = {
    "full": BenchConfig(models=_ALL),
    "quick": BenchConfig(image_size=64, train_images=16, test_images=8, epochs=1, batch_size=8,
                         classifier_images=32, classifier_epochs=1, models=_ALL),
}
"""The recipes by profile name: ``full`` is the benchmark's recipe (for every model, those of
chapter 8 included), ``quick`` a smoke test of the code."""


def profile(name: str | None = None) -> str:
    """The profile in use: ``name`` if given, else ``$FCN_COURSE_PROFILE``, else ``full``."""
    chosen = name if name is not None else os.environ.get("FCN_COURSE_PROFILE") or "full"
    return check_choice("fcn_course.zoo", "profile (or FCN_COURSE_PROFILE)", chosen,
                        tuple(PROFILES))


def config(name: str | None = None) -> BenchConfig:
    """The recipe (a :class:`~fcn_course.bench.BenchConfig`) of the profile in use."""
    return PROFILES[profile(name)]


def cache_dir(name: str | None = None) -> Path:
    """The folder holding the profile's trained models (created when missing)."""
    base = os.environ.get("FCN_COURSE_CACHE") or Path.home() / ".cache" / "fcn-course"
    path = Path(base).expanduser() / profile(name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def classifier(*, profile_name: str | None = None, progress: bool = False) -> nn.Module:
    """The pre-trained course classifier (chapter 2), in eval mode."""
    model, _ = load_or_train_classifier(config(profile_name), cache_dir(profile_name), "cpu",
                                        progress, lambda _: None)
    return model.eval()


def trained(name: str, *, profile_name: str | None = None, progress: bool = False) -> nn.Module:
    """Model ``name`` (``"fcn32s"``, ``"fcn16s"``, ``"fcn8s"``, ``"unet"``, ``"segnet"``,
    ``"deeplab"``) trained by the bench recipe."""
    name = check_choice("zoo.trained()", "name", name, tuple(BUILDERS))
    recipe = config(profile_name)
    folder = cache_dir(profile_name)
    backbone = classifier(profile_name=profile_name, progress=progress)
    data_kwargs = {"image_size": recipe.image_size, "seed": recipe.seed, **recipe.data_options}
    train = LazyData(lambda: materialize(
        ShapesSegmentation("train", num_images=recipe.train_images, **data_kwargs)))
    model, _ = load_or_train_model(name, recipe, backbone, train, folder, "cpu", progress, False)
    return model.eval()


def history(name: str, *, profile_name: str | None = None) -> dict[str, list[float]]:
    """The per-epoch training history of model ``name`` (``epoch``, ``train_loss``, ``lr``,
    ``seconds``), as recorded when it was trained (chapter 6 plots it)."""
    trained(name, profile_name=profile_name)  # trains and saves it first if it is missing
    path = cache_dir(profile_name) / f"{name}.pt"
    return load_checkpoint(path)["history"]


def benchmark(*, models: Sequence[str] | None = None, profile_name: str | None = None,
              progress: bool = False) -> dict[str, Any]:
    """The benchmark report (see :func:`fcn_course.bench.run_benchmark`) from the saved models.

    The report that :func:`prepare` wrote (``bench.json``) is returned when it was made by
    the current recipe, so that chapters need not score every model again; otherwise the
    saved models are loaded (or trained) and scored. ``models`` picks some of the profile's
    models (chapter 5 needs only the FCNs), in the order given.
    """
    recipe = config(profile_name)
    if models is not None:
        for name in models:
            check_choice("zoo.benchmark()", "models", name, recipe.models)
        report = benchmark(profile_name=profile_name, progress=progress) if _prepared(
            recipe, profile_name) else None
        if report is not None:
            rows = {row["model"]: row for row in report["results"]}
            return {**report, "results": [rows[name] for name in models]}
        recipe = dataclasses.replace(recipe, models=tuple(models))
    if _prepared(recipe, profile_name):
        return json.loads((cache_dir(profile_name) / "bench.json").read_text())
    return _run_benchmark(recipe, out_dir=cache_dir(profile_name), progress=progress,
                          log=lambda _: None)


def _prepared(recipe: BenchConfig, profile_name: str | None) -> bool:
    """Whether the cache holds the report that :func:`prepare` wrote for this recipe."""
    saved = cache_dir(profile_name) / "bench.json"
    if not saved.is_file():
        return False
    report = json.loads(saved.read_text())
    same = json.loads(json.dumps(dataclasses.asdict(recipe)))
    return report.get("version") == RECIPE_VERSION and report.get("config") == same


def prepare(*, profile_name: str | None = None, progress: bool = True,
            log: Any = print) -> dict[str, Any]:
    """Train (or find) every model the book loads, so that no chapter trains during a build."""
    log(f"preparing the book's trained models ({profile(profile_name)} profile) in "
        f"{cache_dir(profile_name)}")
    return _run_benchmark(config(profile_name), out_dir=cache_dir(profile_name),
                          progress=progress, log=log)
