"""Processes killed and resumed, and DDP in two gloo processes (long)."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.data import CATS_DOGS, transfer_fit_args, write_photo_folder
from tests.helpers.processes import ROOT, python_cli


@pytest.mark.long
def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(idx_root, tmp_path):
    """Killed in epoch 1 on the fast path (loaded batches of 2 steps), resumed from last.ckpt: it ends with the
    weights of an uninterrupted run on Lightning's per-step path."""
    common = ["fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "3", "--trainer.deterministic", "true"]
    fast = ["--fast_path.steps_per_load", "2"]
    killed = python_cli(*common, *fast, "--trainer.callbacks", "tests.helpers.callbacks.KillAt", cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = tmp_path / "logs/MLP-MNIST/version_0/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # epoch 1 was under way
    assert not [p for p in last.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    resumed = python_cli(*common, *fast, "--ckpt_path", str(last), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = python_cli(*common, "--fast_path", "null", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]
    a = torch.load(last, weights_only=True)
    b = torch.load(tmp_path / "logs/MLP-MNIST/version_1/checkpoints/last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"] == 3 * 9
    for key, value in b["state_dict"].items():
        torch.testing.assert_close(a["state_dict"][key], value, rtol=0, atol=1e-6)
    metrics = [json.loads((tmp_path / f"logs/MLP-MNIST/version_{v}/metrics.json").read_text()) for v in (0, 1)]
    assert abs(metrics[0]["val/acc"] - metrics[1]["val/acc"]) < 1e-6
    rows = (tmp_path / "logs/MLP-MNIST/version_0/metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # the resumed run went on in the same file


DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def ddp_fit_recording(tmp_path: Path, args: list[str]):
    """``fit ARGS`` in two gloo processes, recording each rank's samples and final weights."""
    shards = tmp_path / "shards"
    record = ["--trainer.callbacks", "tests.helpers.callbacks.RecordBatches"]
    fit = python_cli("fit", *args, *DDP, *record, cwd=tmp_path, env_extra={"RECORD_DIR": str(shards)})
    assert fit.returncode == 0, fit.stderr[-3000:]
    seen = [json.loads((shards / f"rank{r}.json").read_text()) for r in (0, 1)]
    weights = [json.loads((shards / f"weights{r}.json").read_text()) for r in (0, 1)]
    return fit, seen, weights


def val_accs_ddp_and_one(ckpt: Path, args: list[str], tmp_path: Path) -> list[float]:
    """``val/acc`` of ``validate`` on the checkpoint in two processes, then in one."""
    accs = []
    for devices in (DDP, ["--trainer.devices", "1"]):
        result = python_cli("validate", "--ckpt_path", str(ckpt), *args, *devices, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        accs.append(float(result.stdout.split("val/acc: ")[1].split()[0]))
    return accs


@pytest.mark.long
def test_ddp_on_cpu_two_processes(idx_root, tmp_path):
    """Two gloo processes: disjoint shards, synced metrics equal to one process, rank 0 writes, resume works."""
    common = ["--data.data_dir", str(idx_root), "--trainer.max_epochs", "1"]
    _, seen, _ = ddp_fit_recording(tmp_path, common)
    assert seen[0] and seen[1] and set(seen[0]).isdisjoint(seen[1])  # each rank its own samples
    assert len(seen[0]) + len(seen[1]) == 540  # 600 - 10% validation, all of them
    runs = sorted(p.name for p in (tmp_path / "logs/MLP-MNIST").iterdir())
    assert runs == ["version_0"]  # one run folder: only rank 0 writes
    ckpt = tmp_path / "logs/MLP-MNIST/version_0/checkpoints/last.ckpt"
    accs = val_accs_ddp_and_one(ckpt, common, tmp_path)
    assert accs[0] == accs[1]  # 60 validation images: an even split, synced
    resume = ["--data.data_dir", str(idx_root), "--trainer.max_epochs", "2"]
    resumed = python_cli("fit", "--ckpt_path", str(ckpt), *resume, *DDP, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    predict = python_cli("predict", "--ckpt_path", str(ckpt), "--data.data_dir", str(idx_root), *DDP, cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    csv_path = Path(predict.stdout.split("predictions: ")[1].split()[0])
    rows = (tmp_path / csv_path).read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f"test[{i}]" for i in range(200)]  # both shares, in order


@pytest.mark.long
def test_ddp_fast_path_shards_the_device_resident_data(idx_root, tmp_path):
    """The fast path under two gloo processes: each rank slices its own half of the resident data, steps stay in
    sync, and the weights are those of the per-step path (``--fast_path null``) under DDP."""
    common = ["--data.data_dir", str(idx_root), "--trainer.max_epochs", "2", "--fast_path.steps_per_load", "2"]
    fit, seen, weights = ddp_fit_recording(tmp_path, common)
    assert "fast path off" not in fit.stdout + fit.stderr
    assert len(seen[0]) == len(seen[1]) == 2 * 270 and set(seen[0][:270]).isdisjoint(seen[1][:270])  # 540 samples
    assert weights[0] == weights[1]  # gradients all-reduced at every split step: the replicas stay equal
    ckpt = tmp_path / "logs/MLP-MNIST/version_0/checkpoints/last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 2 * 5  # 270 per rank: 4 x 64 + 14
    shutil.rmtree(tmp_path / "logs")
    _, _, per_step = ddp_fit_recording(tmp_path, [*common, "--fast_path", "null"])
    assert per_step[0] == weights[0]
    accs = val_accs_ddp_and_one(ckpt, common, tmp_path)
    assert accs[0] == accs[1]


@pytest.mark.long
def test_readme_ddp_command_as_typed(idx_root, tmp_path):
    """The README's multi-GPU command (here two gloo processes on the CPU), progress bar and logger on."""
    args = ["fit", "--trainer.devices", "2", "--trainer.strategy", "ddp", "--data.data_dir", str(idx_root)]
    fit = python_cli(*args, "--trainer.max_epochs", "1", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "test/acc: " in fit.stdout and "Traceback" not in fit.stderr and "args parameter" not in fit.stderr
    assert sorted(p.name for p in (tmp_path / "logs/MLP-MNIST").iterdir()) == ["version_0"]
    assert (tmp_path / "logs/MLP-MNIST/version_0/metrics.json").is_file()


@pytest.mark.long
def test_readme_torchrun_command(idx_root, tmp_path):
    """The README's torchrun launch, on one node with two processes (gloo on the CPU)."""
    port = str(29500 + os.getpid() % 1000)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    torchrun += ["--node_rank", "0", "--master_addr", "127.0.0.1", "--master_port", port]
    app = ["-m", "lightning_app", "fit", "--trainer.num_nodes", "1", "--trainer.devices", "2"]
    app += ["--trainer.strategy", "ddp", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([*torchrun, *app], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("test/acc: ") == 1  # the summary comes from rank 0 alone
    assert sorted(p.name for p in (tmp_path / "logs/MLP-MNIST").iterdir()) == ["version_0"]


@pytest.mark.long
def test_ddp_shares_the_feature_pass_and_makes_one_process_features(tmp_path):
    """Two gloo processes each run the backbone over half the photos; the gathered features, and the cache file
    rank 0 writes, are a one-process run's."""
    photos = write_photo_folder(tmp_path / "photos", CATS_DOGS, per_class=15)
    record = ["--trainer.callbacks+=tests.helpers.callbacks.RecordFeaturePass"]
    tables = []
    for name, devices in (("two", DDP), ("one", ["--trainer.devices", "1", "--trainer.accelerator", "cpu"])):
        folder = tmp_path / name
        folder.mkdir()
        run = python_cli(
            *transfer_fit_args(photos), *devices, *record, cwd=folder, env_extra={"RECORD_DIR": str(folder / "rec")}
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "test/acc:" in run.stdout
        counts = [json.loads(p.read_text()) for p in sorted((folder / "rec").glob("pass*.json"))]
        tables.append({p.name: torch.load(p, weights_only=True) for p in (folder / "logs/feature_cache").glob("*.pt")})
        if name == "two":
            assert len(counts) == 2 and sum(counts) == 30 and abs(counts[0] - counts[1]) <= 3, (
                counts
            )  # at most 1 apart per split
        else:
            assert counts == [30]
    two, one = tables
    assert two.keys() == one.keys() and len(one) == 3  # train, val and test, under the same keys
    for key, table in one.items():
        assert torch.equal(two[key]["labels"], table["labels"])
        torch.testing.assert_close(two[key]["features"], table["features"], rtol=1e-4, atol=1e-5)


@pytest.mark.long
def test_ddp_processes_stream_their_own_photos(tmp_path):
    """A LitData stream under two gloo processes: each reads its own photos, as many as the other."""
    from lightning_app.toolkit.optimize import optimize_images

    photos = write_photo_folder(tmp_path / "photos", CATS_DOGS, per_class=20)  # 28 train, 8 val, 4 test
    stream = tmp_path / "stream"
    optimize_images(data_dir=str(photos), output=str(stream), num_workers=2)
    model = ["--model", "TransferModel", "--model.backbone", "resnet18", "--model.weights", "none"]
    data = ["--data", "StreamingImageDataModule", "--data.data_dir", str(stream), "--data.image_size", "32"]
    data += ["--data.augment", "false", "--data.num_workers", "0", "--data.batch_size", "2"]
    _, seen, _ = ddp_fit_recording(tmp_path, [*model, *data, "--trainer.max_epochs", "1"])
    assert seen[0] and len(seen[0]) == len(seen[1]) and set(seen[0]).isdisjoint(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 28
