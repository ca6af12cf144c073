"""The cache of trained models that the book's chapters load (quick profile, tiny data)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from fcn_course import zoo
from fcn_course.bench import load_or_train_model, model_settings
from fcn_course.train import load_checkpoint, save_checkpoint


@pytest.fixture
def quick_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FCN_COURSE_CACHE", str(tmp_path))
    monkeypatch.setenv("FCN_COURSE_PROFILE", "quick")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "quick"
    torch.set_num_threads(threads)


def test_profile_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FCN_COURSE_PROFILE", raising=False)
    assert zoo.profile() == "full" and zoo.config() == zoo.PROFILES["full"]
    monkeypatch.setenv("FCN_COURSE_PROFILE", "quick")
    assert zoo.profile() == "quick" and zoo.config().train_images < 100
    monkeypatch.setenv("FCN_COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"FCN_COURSE_PROFILE.*'full', 'quick', got 'fast'"):
        zoo.profile()


def test_the_full_profile_is_the_benchmark() -> None:
    from fcn_course.bench import BenchConfig

    full = zoo.PROFILES["full"]
    assert dataclasses.replace(full, models=BenchConfig().models) == BenchConfig()
    assert set(full.models) == {"fcn32s", "fcn16s", "fcn8s", "unet", "segnet", "deeplab"}


def test_prepare_saves_every_model_and_later_calls_load_them(quick_cache: Path) -> None:
    first = zoo.prepare(progress=False, log=lambda _: None)
    assert not any(row["reused"] for row in first["results"])
    assert [row["model"] for row in first["results"]] == list(zoo.config().models)
    for name in ("classifier", "fcn32s", "fcn16s", "fcn8s", "unet", "segnet", "deeplab"):
        assert (quick_cache / f"{name}.pt").is_file()
    again = zoo.benchmark()  # the report prepare() wrote
    assert again == json.loads((quick_cache / "bench.json").read_text())
    (quick_cache / "bench.json").unlink()
    again = zoo.benchmark()  # scored again from the saved models
    assert all(row["reused"] for row in again["results"])
    # Loading gives the very weights that were trained and scores them the same.
    for before, after in zip(first["results"], again["results"], strict=True):
        assert before["mean_iou"] == after["mean_iou"]
    history = zoo.history("fcn8s")
    assert history["epoch"] == list(range(1, zoo.config().epochs + 1))
    assert history == first["results"][2]["history"]
    model = zoo.trained("fcn8s")
    saved = load_checkpoint(quick_cache / "fcn8s.pt")["model_state"]
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_a_saved_model_with_other_settings_is_trained_again(quick_cache: Path) -> None:
    zoo.trained("fcn32s")
    path = quick_cache / "fcn32s.pt"
    state = load_checkpoint(path)
    state["settings"] = {**state["settings"], "epochs": 99}
    state["model_state"] = {k: torch.zeros_like(v) for k, v in state["model_state"].items()}
    save_checkpoint(path, state)
    model = zoo.trained("fcn32s")
    assert any(v.abs().sum() > 0 for v in model.state_dict().values())
    assert load_checkpoint(path)["settings"] == model_settings("fcn32s", zoo.config())


def test_a_cached_model_equals_one_trained_afresh(quick_cache: Path) -> None:
    cached = zoo.trained("fcn16s")
    from fcn_course.bench import LazyData
    from fcn_course.data import ShapesSegmentation
    from fcn_course.pretrain import materialize

    recipe = zoo.config()
    train = LazyData(lambda: materialize(ShapesSegmentation(
        "train", num_images=recipe.train_images, image_size=recipe.image_size,
        seed=recipe.seed, **recipe.data_options)))
    fresh, info = load_or_train_model("fcn16s", recipe, zoo.classifier(), train, None, "cpu",
                                      False, False)
    assert not info["reused"]
    for (key, a), b in zip(cached.state_dict().items(), fresh.state_dict().values(),
                           strict=True):
        assert torch.equal(a, b), key


def test_trained_rejects_an_unknown_model(quick_cache: Path) -> None:
    with pytest.raises(ValueError, match=r"'name' expected one of 'fcn32s'.*got 'fcn4s'"):
        zoo.trained("fcn4s")


def test_benchmark_of_some_models_takes_their_rows(quick_cache: Path) -> None:
    fcns = ("fcn32s", "fcn16s", "fcn8s")
    before = zoo.benchmark(models=("fcn8s", "fcn32s"))  # nothing prepared: trains just these
    assert [row["model"] for row in before["results"]] == ["fcn8s", "fcn32s"]
    assert not (quick_cache / "unet.pt").exists()
    full = zoo.prepare(progress=False, log=lambda _: None)
    rows = zoo.benchmark(models=fcns)["results"]
    assert rows == full["results"][:3]
    assert rows[0]["mean_iou"] == before["results"][1]["mean_iou"]
    with pytest.raises(ValueError, match=r"'models' expected one of .*got 'fcn4s'"):
        zoo.benchmark(models=("fcn4s",))
