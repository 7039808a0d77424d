"""Beyond one machine, proven on one: two "nodes" under torchrun's c10d rendezvous, SLURM's variables for two
tasks, a process killed mid-epoch, and runs kept on fsspec filesystems."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.processes import ROOT, free_port, python_cli

CPU_NODES = ["--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.accelerator", "cpu"]
CPU_NODES += ["--trainer.strategy", "ddp"]


def launch_nodes(app: list[str], cwd: Path, env_extra: dict | None = None, timeout: float = 300) -> list:
    """``torchrun --nnodes 2 --nproc_per_node 1`` started twice, as on two machines, meeting at a c10d
    rendezvous on localhost; returns both CompletedProcess-like results (returncode, stdout, stderr, ended)."""
    endpoint = f"127.0.0.1:{free_port()}"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
    torchrun += ["--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "job", "--max_restarts", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    nodes = [
        subprocess.Popen(
            [*torchrun, "-m", "lightning_app", *app], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = []
    for node in nodes:
        out, err = node.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(node.args, node.returncode, out.decode(), err.decode()))
        results[-1].ended = time.time()
    return results


@pytest.mark.long  # two torchrun launches and a one-process fit: about 1 minute
def test_two_nodes_under_torchrun_train_like_one_process_with_the_same_global_batch(idx_root, tmp_path):
    common = ["--data.data_dir", str(idx_root), "--trainer.max_epochs", "2", "--trainer.deterministic", "true"]
    for name in ("two", "one"):
        (tmp_path / name).mkdir()
    nodes = launch_nodes(["fit", *common, *CPU_NODES, "--data.batch_size", "32"], tmp_path / "two")
    for node in nodes:
        assert node.returncode == 0, node.stderr[-3000:]
    assert sum(node.stdout.count("test/acc: ") for node in nodes) == 1  # rank 0 alone reports and writes
    assert sorted(p.name for p in (tmp_path / "two/logs/MLP-MNIST").iterdir()) == ["version_0"]
    one = python_cli("fit", *common, "--data.batch_size", "64", cwd=tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    # 2 x 32 samples a step, averaged across the nodes, are the same 64 samples one process takes in a step
    runs = [tmp_path / f"{name}/logs/MLP-MNIST/version_0" for name in ("two", "one")]
    states = [torch.load(run / "checkpoints/last.ckpt", weights_only=True) for run in runs]
    assert states[0]["global_step"] == states[1]["global_step"] == 2 * 9
    for key, value in states[1]["state_dict"].items():
        torch.testing.assert_close(states[0]["state_dict"][key], value, rtol=0, atol=1e-5)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
    assert metrics[0]["val/acc"] == metrics[1]["val/acc"]
    assert metrics[0]["val/loss"] == pytest.approx(metrics[1]["val/loss"], abs=1e-5)
    # predict on both nodes: one CSV, every test image once, in order
    ckpt = str(runs[0] / "checkpoints/last.ckpt")
    nodes = launch_nodes(["predict", "--ckpt_path", ckpt, "--data.data_dir", str(idx_root), *CPU_NODES], tmp_path)
    assert all(node.returncode == 0 for node in nodes), nodes[0].stderr[-2000:] + nodes[1].stderr[-2000:]
    (csv_line,) = [line for node in nodes for line in node.stdout.splitlines() if line.startswith("predictions: ")]
    rows = (tmp_path / csv_line.split()[1]).read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f"test[{i}]" for i in range(200)]


@pytest.mark.long
def test_slurms_variables_for_two_tasks_make_one_job(idx_root, tmp_path):
    """What ``srun`` sets for two tasks on two nodes, without srun: Lightning's SLURMEnvironment is detected."""
    app = ["fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", *CPU_NODES]
    app += ["--trainer.callbacks", "tests.helpers.callbacks.RecordEnvironment"]
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "dlwp", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1"}
    slurm |= {"SLURM_NODELIST": "localhost", "MASTER_PORT": str(free_port()), "RECORD_DIR": str(tmp_path / "rec")}
    env = {**os.environ, "PYTHONPATH": str(ROOT), **slurm}
    tasks = [
        subprocess.Popen(
            [sys.executable, "-m", "lightning_app", *app],
            cwd=tmp_path,
            env={**env, "SLURM_PROCID": str(r), "SLURM_LOCALID": "0", "SLURM_NODEID": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    outputs = [task.communicate(timeout=300) for task in tasks]
    for task, (_, err) in zip(tasks, outputs, strict=True):
        assert task.returncode == 0, err[-3000:]
    seen = [json.loads((tmp_path / f"rec/env{r}.json").read_text()) for r in (0, 1)]
    assert seen == [{"environment": "SLURMEnvironment", "world_size": 2, "node_rank": r} for r in (0, 1)]
    assert sorted(p.name for p in (tmp_path / "logs/MLP-MNIST").iterdir()) == ["version_0"]
    assert sum(out.count("test/acc: ") for out, _ in outputs) == 1


@pytest.mark.long
def test_a_process_killed_mid_epoch_ends_the_job_quickly_and_it_resumes(idx_root, tmp_path):
    common = ["--data.data_dir", str(idx_root), "--trainer.max_epochs", "3", "--data.batch_size", "16", *CPU_NODES]
    common += ["--trainer.strategy", "DDPStrategy", "--trainer.strategy.timeout", "0:02:00"]  # the README's timeout
    kill = [
        "--trainer.callbacks",
        "tests.helpers.callbacks.KillAt",
        "--trainer.callbacks.rank",
        "1",
        "--fast_path",
        "null",
    ]
    started = time.time()
    nodes = launch_nodes(["fit", *common, *kill], tmp_path)
    assert all(node.returncode != 0 for node in nodes)
    survivor = next(node for node in nodes if "error: process 0 of 2 stopped" in node.stderr)
    assert "relaunch the job with `fit --ckpt_path last`" in survivor.stderr
    assert "Traceback" not in survivor.stderr.split("error: process 0 of 2")[0][-2000:]
    assert max(node.ended for node in nodes) - started < 120  # the whole job, kill included; gloo notices at once
    last = tmp_path / "logs/MLP-MNIST/version_0/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # epoch 1 was under way
    nodes = launch_nodes(["fit", *common, "--ckpt_path", "last"], tmp_path)
    for node in nodes:
        assert node.returncode == 0, node.stderr[-3000:]
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 2 and sorted(p.name for p in last.parents[2].iterdir()) == ["version_0"]


@pytest.fixture
def memory_fs():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.rm("/runs", recursive=True) if fs.exists("/runs") else None
    yield fs
    if fs.exists("/runs"):
        fs.rm("/runs", recursive=True)


@pytest.mark.long  # three short runs: about 7 s
def test_a_run_kept_in_fsspecs_memory_filesystem_trains_tests_and_resumes(
    idx_root, run_cli, memory_fs, tmp_path, capsys
):
    where = ["--trainer.default_root_dir", "memory://runs", "--trainer.logger.init_args.save_dir", "memory://runs"]
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", *where)
    assert "memory:// lives in this process only" in capsys.readouterr().out  # issue 32: say what vanishes
    run = "/runs/MLP-MNIST/version_0"
    names = {Path(p).name for p in memory_fs.find(run)}
    assert {"last.ckpt", "config.yaml", "hparams.yaml", "metrics.json", "metrics.csv"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names) and not list(tmp_path.rglob("*.ckpt"))
    assert json.loads(memory_fs.cat(f"{run}/metrics.json"))["test/acc"] > 0.5
    last = f"memory:/{run}/checkpoints/last.ckpt"
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "2", "--ckpt_path", last, *where)
    assert [line.split(",")[0] for line in memory_fs.cat(f"{run}/metrics.csv").decode().splitlines()[1:]] == ["0", "1"]
    run_cli("test", "--data.data_dir", str(idx_root), "--ckpt_path", last, *where)
    assert sorted(Path(p).name for p in memory_fs.ls("/runs/MLP-MNIST", detail=False)) == ["version_0", "version_1"]


@pytest.mark.long
def test_a_run_under_a_file_url(idx_root, run_cli, tmp_path):
    runs = tmp_path / "store"
    where = ["--trainer.default_root_dir", f"file://{runs}", "--trainer.logger.init_args.save_dir", f"file://{runs}"]
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", *where)
    assert (runs / "MLP-MNIST/version_0/checkpoints/last.ckpt").is_file()
    assert (runs / "MLP-MNIST/version_0/metrics.json").is_file()


def test_the_checkpoint_writer_on_a_store_without_rename_never_leaves_part_of_a_checkpoint(memory_fs, monkeypatch):
    from lightning_app.errors import TrainingError
    from lightning_app.runs.checkpoint_writer import AtomicCheckpointIO

    writer, path = AtomicCheckpointIO(), "memory://runs/x/last.ckpt"
    writer.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert torch.equal(writer.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(TrainingError, match=r"could not write .* \(the previous one is kept whole\)"):
        writer.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(writer.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert memory_fs.find("/runs") == ["/runs/x/last.ckpt"]
