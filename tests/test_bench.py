"""The benchmark and classifier pre-training, on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fcn_course.bench import BenchConfig, format_table, parse_data_options, run_benchmark
from fcn_course.cli import main
from fcn_course.data import ShapesSegmentation
from fcn_course.pretrain import materialize

TINY = dict(image_size=32, train_images=8, test_images=4, epochs=1, batch_size=4,
            classifier_images=12, classifier_epochs=1)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_materialize_keeps_every_item_and_the_class_names() -> None:
    lazy = ShapesSegmentation("val", num_images=3, image_size=32)
    dense = materialize(lazy)
    assert len(dense) == 3 and dense.classes == lazy.classes
    for i in range(3):
        for a, b in zip(dense[i], lazy[i], strict=True):
            assert torch.equal(a, b)


def test_benchmark_reports_every_model_and_reuses_the_classifier(tmp_path: Path) -> None:
    messages: list[str] = []
    report = run_benchmark(BenchConfig(**TINY), out_dir=tmp_path, progress=False,
                           log=messages.append)
    assert [r["model"] for r in report["results"]] == ["fcn32s", "fcn16s", "fcn8s"]
    for row in report["results"]:
        assert 0 <= row["mean_iou"] <= 1 and 0 <= row["boundary_accuracy"] <= 1
        assert row["images_per_second"] > 0 and row["parameters"] > 0
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["results"][0]["model"] == "fcn32s"
    assert not report["classifier"]["reused"]
    again = run_benchmark(BenchConfig(**TINY, models=("fcn8s",)), out_dir=tmp_path,
                          progress=False, log=messages.append)
    assert again["classifier"]["reused"]
    assert any("reused classifier.pt" in m for m in messages)
    table = format_table(report).splitlines()
    assert len(table) == 5 and table[-1].startswith("| fcn8s |")


def test_bench_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--out", str(tmp_path), "--no-progress", "--models", "fcn32s",
            "--data-option", "thin_width=[4,6]"]
    for key, value in TINY.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| fcn32s |" in out and "bench.json" in out
    assert json.loads((tmp_path / "bench.json").read_text())["config"]["data_options"] == {
        "thin_width": [4, 6]}


def test_bad_benchmark_settings_are_named() -> None:
    with pytest.raises(ValueError, match="'models' expected one of 'fcn32s'"):
        BenchConfig(models=("fcn64s",))
    with pytest.raises(ValueError, match="'epochs' expected a positive int, got 0"):
        BenchConfig(epochs=0)
    with pytest.raises(ValueError, match="key=value"):
        parse_data_options(["thin_width"])
    assert parse_data_options(["noise=0.02", "thin_width=[6,10]"]) == {
        "noise": 0.02, "thin_width": (6, 10)}


def test_the_classifier_is_the_same_whatever_random_numbers_were_drawn_before() -> None:
    from fcn_course.bench import load_or_train_classifier

    config = BenchConfig(**TINY)
    torch.manual_seed(123)
    first, _ = load_or_train_classifier(config, None, "cpu", False, lambda _: None)
    torch.rand(1000)  # someone else used the global generator in between
    second, _ = load_or_train_classifier(config, None, "cpu", False, lambda _: None)
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values(),
                           strict=True):
        assert torch.equal(a, b), key
