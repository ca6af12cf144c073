"""Training on several processes: torchrun, DistributedSampler, DDP, rank-0 checkpoints.

Two CPU processes on the gloo backend, started by ``python -m torch.distributed.run`` as a
reader would start them. Oracles: a single-process :func:`evaluate` of the saved checkpoint,
the indices each process read from the data set, one plain single-process SGD step on the
union of the processes' batches, and an uninterrupted run for the resumed one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_course.cli import main
from fcn_course.data import ShapesSegmentation
from fcn_course.metrics import TrimapAccuracy
from fcn_course.models import build_model, course_vgg, model_from_spec
from fcn_course.train import (
    DistInfo,
    TrainConfig,
    dist_info,
    evaluate,
    fit,
    init_distributed,
    load_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _torchrun(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run --nproc_per_node=2 ARGS`` on a free port."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args,
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _tiny(seed: int, *, name: str = "fcn8s", batch_norm: bool = True,
          dropout: float = 0.5) -> nn.Module:
    """A tiny FCN whose score layers start random, so that its predictions differ by class."""
    torch.manual_seed(seed)
    backbone = course_vgg(widths=(4, 4, 8, 8, 8), fc_width=16, batch_norm=batch_norm,
                          dropout=dropout)
    model = build_model(name, num_classes=7, backbone=backbone)
    with torch.no_grad():
        for layer_name, param in model.named_parameters():
            if layer_name.startswith("score") and layer_name.endswith("weight"):
                param.normal_(std=0.5)
    return model


# The worker repeats _tiny: it runs in processes that cannot import this test module.
WORKER = '''
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

import fcn_course.train as train
from fcn_course.data import ShapesSegmentation
from fcn_course.models import build_model, course_vgg
from fcn_course.train import TrainConfig, cleanup_distributed, fit, init_distributed

torch.set_num_threads(1)
out = Path(sys.argv[1])
info = init_distributed()
assert info.world_size == 2 and info.backend == "gloo", info
rank = info.rank

saves = []
real_save = train.save_checkpoint
train.save_checkpoint = lambda path, state: saves.append(Path(path).name) or real_save(path, state)
bars = []
real_bar = train._progress_bar
def recording_bar(total, *, enabled, desc):
    bars.append(enabled)
    return real_bar(total, enabled=False, desc=desc)
train._progress_bar = recording_bar


def tiny(seed, *, name="fcn8s", batch_norm=True, dropout=0.5):
    torch.manual_seed(seed)
    backbone = course_vgg(widths=(4, 4, 8, 8, 8), fc_width=16, batch_norm=batch_norm,
                          dropout=dropout)
    model = build_model(name, num_classes=7, backbone=backbone)
    with torch.no_grad():
        for layer_name, param in model.named_parameters():
            if layer_name.startswith("score") and layer_name.endswith("weight"):
                param.normal_(std=0.5)
    return model


class Recording(Dataset):
    """The data set as it is, noting which indices this process reads."""

    def __init__(self, base):
        self.base, self.num_classes, self.read = base, base.num_classes, []

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        self.read.append(int(index))
        return self.base[index]


class NoVoid(Dataset):
    """Void pixels relabelled as background: every image has as many labelled pixels."""

    def __init__(self, base):
        self.base, self.num_classes = base, base.num_classes

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        image, mask = self.base[index]
        return image, torch.where(mask == 255, 0, mask)


def shapes(split, n):
    return ShapesSegmentation(split, num_images=n, image_size=32, size_range=(8.0, 24.0))


# (a, b, c) three epochs on 8 training images, 4 per process; 5 validation images (3 + 2).
# Each process builds its model from its own seed: DDP must start both from rank 0's.
config = TrainConfig(epochs=3, batch_size=2, lr=0.05, seed=3)
recorded = Recording(shapes("train", 8))
read = []
def note_epoch(epoch, history):
    read.append(list(recorded.read))
    recorded.read.clear()
result = fit(tiny(rank), recorded, shapes("val", 5), config, out_dir=out / "a",
             progress=True, on_epoch_end=note_epoch)
(out / f"a_rank{rank}.json").write_text(json.dumps({
    "read": read, "metrics": result.metrics, "history": result.history, "saves": saves,
    "bars": bars,
}))

# Resume: the same run stopped by Ctrl-C after epoch 2, then continued in a fresh model.
def stop(epoch, history):
    if epoch == 2:
        raise KeyboardInterrupt
try:
    fit(tiny(rank), shapes("train", 8), shapes("val", 5), config, out_dir=out / "b",
        progress=False, on_epoch_end=stop)
    raise AssertionError("the run was not interrupted")
except KeyboardInterrupt:
    pass
fit(tiny(rank), shapes("train", 8), shapes("val", 5), config, out_dir=out / "b",
    resume=True, progress=False)

# (d) one step of 2 images per process, no batch norm, no dropout, no void pixels.
for reduction, lr in (("mean", 0.1), ("sum", 1e-4)):
    step = TrainConfig(epochs=1, batch_size=2, lr=lr, momentum=0.9, weight_decay=0.0,
                       loss_reduction=reduction, seed=5)
    model = tiny(rank, name="fcn32s", batch_norm=False, dropout=0.0)
    fit(model, NoVoid(shapes("train", 4)), None, step, progress=False)
    torch.save(model.state_dict(), out / f"d_{reduction}_rank{rank}.pt")

cleanup_distributed()
'''


def _load_rank(out: Path, rank: int) -> dict[str, Any]:
    return json.loads((out / f"a_rank{rank}.json").read_text())


def _shapes(split: str, n: int) -> ShapesSegmentation:
    return ShapesSegmentation(split, num_images=n, image_size=32, size_range=(8.0, 24.0))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worker above, run once by torchrun with two CPU processes; its output folder."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(WORKER)
    _torchrun(str(script), str(out))
    return out


# ----------------------------------------------------------------------------- fit, 2 ranks


@pytest.mark.slow
def test_only_rank_zero_writes_one_checkpoint_that_loads(two_process_run: Path) -> None:
    out = two_process_run
    assert sorted(p.name for p in (out / "a").iterdir()) == ["last.pt"]
    first, second = _load_rank(out, 0), _load_rank(out, 1)
    assert first["saves"] == ["last.pt"] * 3 and second["saves"] == []
    # Progress bars: the training bar of each epoch on rank 0 only (fit hides evaluation's).
    assert first["bars"] == [True, False] * 3 and second["bars"] == [False] * 6
    state = load_checkpoint(out / "a" / "last.pt")
    assert state["epoch"] == 3 and state["world_size"] == 2
    assert len(state["rng_states"]) == 2
    model = _tiny(0)
    model.load_state_dict(state["model_state"])


@pytest.mark.slow
def test_every_rank_reports_the_single_process_metrics_of_the_checkpoint(
    two_process_run: Path,
) -> None:
    first, second = _load_rank(two_process_run, 0), _load_rank(two_process_run, 1)
    assert json.dumps(first["metrics"]) == json.dumps(second["metrics"])
    assert json.dumps(first["history"]) == json.dumps(second["history"])

    model = _tiny(0)
    model.load_state_dict(load_checkpoint(two_process_run / "a" / "last.pt")["model_state"])
    val = _shapes("val", 5)
    expected = evaluate(model, val, batch_size=5)  # one process, one batch
    got = first["metrics"]
    # Every labelled pixel of the 5 images counted once: no image twice, none left out.
    labelled = sum(int((val[i][1] != 255).sum()) for i in range(len(val)))
    assert sum(map(sum, got["confusion_matrix"])) == labelled
    assert got["confusion_matrix"] == expected["confusion_matrix"]
    predicted = [sum(column) for column in zip(*expected["confusion_matrix"], strict=True)]
    assert sum(1 for count in predicted if count) >= 2, "a model predicting one class tests less"
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert got[key] == pytest.approx(expected[key], abs=1e-12)
    assert got["boundary_accuracy"]["3"] == pytest.approx(expected["boundary_accuracy"][3])
    assert first["history"]["val_mean_iou"][-1] == pytest.approx(expected["mean_iou"])


@pytest.mark.slow
def test_each_rank_reads_a_disjoint_half_of_every_epoch(two_process_run: Path) -> None:
    first, second = _load_rank(two_process_run, 0), _load_rank(two_process_run, 1)
    assert len(first["read"]) == len(second["read"]) == 3
    for mine, theirs in zip(first["read"], second["read"], strict=True):
        assert len(mine) == len(theirs) == 4
        assert sorted(mine + theirs) == list(range(8))
    # set_epoch: a new shuffle every epoch.
    assert len({tuple(epoch) for epoch in first["read"]}) == 3


@pytest.mark.slow
def test_resumed_two_process_run_equals_the_uninterrupted_one(two_process_run: Path) -> None:
    straight = load_checkpoint(two_process_run / "a" / "last.pt")
    resumed = load_checkpoint(two_process_run / "b" / "last.pt")
    assert resumed["epoch"] == 3
    different = [k for k, v in straight["model_state"].items()
                 if not torch.equal(v, resumed["model_state"][k])]
    assert not different, f"parameters differ: {different[:5]}"
    for key, values in straight["history"].items():
        if key != "seconds":
            assert resumed["history"][key] == values, key


@pytest.mark.slow
def test_resuming_with_another_number_of_processes_is_refused(two_process_run: Path) -> None:
    config = TrainConfig(epochs=3, batch_size=2, lr=0.05, seed=3)
    with pytest.raises(ValueError, match=r"trained by 2 process\(es\), this one has 1.*"
                                         r"--nproc_per_node=2"):
        fit(_tiny(0), _shapes("train", 8), _shapes("val", 5), config,
            out_dir=two_process_run / "a", resume=True, progress=False)


def _union_step(reduction: str, lr: float, indices: list[int]) -> dict[str, torch.Tensor]:
    """The oracle: one plain SGD step of one process on the images ``indices``."""
    model = _tiny(0, name="fcn32s", batch_norm=False, dropout=0.0)  # rank 0's initial weights
    data = _shapes("train", 4)
    images = torch.stack([data[i][0] for i in indices])  # (N, 3, 32, 32)
    masks = torch.stack([data[i][1] for i in indices])  # (N, 32, 32)
    masks = torch.where(masks == 255, 0, masks)
    loss = F.cross_entropy(model(images), masks, reduction=reduction)
    loss.backward()
    # Frozen parameters (the fixed bilinear upsampling) keep their values.
    return {name: (param - lr * param.grad if param.requires_grad else param).detach()
            for name, param in model.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize(("reduction", "lr"), [("mean", 0.1), ("sum", 1e-4)])
def test_a_two_process_step_equals_one_process_step_on_the_union_batch(
    two_process_run: Path, reduction: str, lr: float
) -> None:
    expected = _union_step(reduction, lr, [0, 1, 2, 3])
    one_half = _union_step(reduction, lr, [0, 1])
    initial = dict(_tiny(0, name="fcn32s", batch_norm=False, dropout=0.0).named_parameters())
    for rank in (0, 1):
        got = torch.load(two_process_run / f"d_{reduction}_rank{rank}.pt", weights_only=True)
        for name, value in expected.items():
            if initial[name].requires_grad:
                assert not torch.equal(value, initial[name]), f"{name} did not move"
            torch.testing.assert_close(got[name], value, msg=f"rank {rank}, {name}")
        # Not the step of one process's own half: the gradients were combined.
        assert not all(torch.allclose(got[n], v) for n, v in one_half.items())


# ----------------------------------------------------------------------------- fcn-course train


@pytest.mark.slow
def test_fcn_course_train_runs_under_torchrun(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = _torchrun(
        "-m", "fcn_course", "train", "--model", "fcn32s", "--epochs", "2", "--image-size",
        "32", "--train-images", "8", "--val-images", "5", "--batch-size", "2",
        "--device", "cpu", "--no-progress", "--json", "--out", str(out),
    )
    summary = json.loads(done.stdout)  # rank 0's report only: a second would not parse
    assert done.stderr.count("epoch 2/2") == 1
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "last.pt"]
    state = load_checkpoint(out / "last.pt")
    assert state["world_size"] == 2 and state["epoch"] == 2
    assert json.loads((out / "history.json").read_text()) == summary["history"]
    model = model_from_spec(state["model_spec"])
    model.load_state_dict(state["model_state"])
    expected = evaluate(model, ShapesSegmentation("val", num_images=5, image_size=32))
    assert summary["metrics"]["confusion_matrix"] == expected["confusion_matrix"]
    assert summary["metrics"]["mean_iou"] == pytest.approx(expected["mean_iou"], abs=1e-12)


def test_train_help_shows_how_to_launch_with_torchrun(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "torchrun --nproc_per_node=2 -m fcn_course train" in text
    assert "per process" in text


# ----------------------------------------------------------------------------- one process


@pytest.fixture
def no_torchrun(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_torchrun_init_distributed_is_one_process_of_one(
    no_torchrun: pytest.MonkeyPatch,
) -> None:
    assert init_distributed() == DistInfo(rank=0, world_size=1, local_rank=0, backend=None)
    assert not torch.distributed.is_initialized()
    assert dist_info() == DistInfo()
    no_torchrun.setenv("WORLD_SIZE", "1")
    assert init_distributed("gloo").world_size == 1
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize(("env", "match"), [
    ({"WORLD_SIZE": "two"}, r"environment variable WORLD_SIZE expected an int >= 1, got 'two'"),
    ({"WORLD_SIZE": "0"}, r"WORLD_SIZE expected an int >= 1, got '0'.*torchrun"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, r"RANK expected an int in \[0, WORLD_SIZE=2\), got 2"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, r"RANK expected an int >= 0, got '-1'"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, r"MASTER_ADDR and MASTER_PORT are not set"),
])
def test_init_distributed_names_a_bad_torchrun_environment(
    no_torchrun: pytest.MonkeyPatch, env: dict[str, str], match: str
) -> None:
    for name, value in env.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        init_distributed()
    assert not torch.distributed.is_initialized()


def test_init_distributed_rejects_an_unknown_backend(no_torchrun: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"argument 'backend' expected one of 'gloo', 'nccl', "
                                         r"got 'mpi'"):
        init_distributed("mpi")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU machine")
def test_init_distributed_refuses_nccl_without_cuda(no_torchrun: pytest.MonkeyPatch) -> None:
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "1"}.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(ValueError, match=r"argument 'backend' expected 'gloo' on a machine "
                                         r"without CUDA, got 'nccl'"):
        init_distributed("nccl")


def test_trimap_all_reduce_is_a_no_op_without_distributed() -> None:
    trimap = TrimapAccuracy([1, 2])
    target = torch.tensor([[[0, 0, 1, 1]]])
    trimap.update(torch.tensor([[[0, 1, 1, 1]]]), target)
    before = trimap.compute()
    assert trimap.all_reduce() is trimap
    assert trimap.compute() == before
