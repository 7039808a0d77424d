"""The fast path makes the per-step path's optimizer steps (its timing is for benchmarks/, not tests)."""

from functools import partial

import pytest
import torch
from lightning.pytorch import Callback
from torch import nn

from datamodules import MNISTDataModule
from datamodules.device_batches import DeviceBatches
from lightning_app.engine.fast_path import FastPath
from modules import MLP, Classifier
from tests.helpers.callbacks import StopAfter
from tests.helpers.training import fit_tiny_mnist, train_losses


def weights(trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.lightning_module.parameters()]


def test_epoch_metrics_equal_a_plain_computation(idx_root):
    """Loss and accuracy kept in torchmetrics and logged once per epoch equal the per-sample mean and accuracy."""
    dm = MNISTDataModule(data_dir=str(idx_root), batch_size=7)  # uneven last batch: weights matter
    dm.setup("fit")
    model = MLP().eval()
    losses, correct, count = [], 0, 0
    with torch.no_grad():
        for batch in dm.val_dataloader():
            x, y = dm.on_after_batch_transfer(batch, 0)
            model._step((x, y), "val")
            log_probs = model(x)
            losses.append(nn.functional.nll_loss(log_probs, y, reduction="sum"))
            correct += int((log_probs.argmax(1) == y).sum())
            count += len(y)
    torch.testing.assert_close(model.val_loss.compute(), torch.stack(losses).sum() / count)
    torch.testing.assert_close(model.val_acc.compute(), torch.tensor(correct / count))


def test_batched_indexing_gives_the_samples_of_a_per_sample_loader(idx_root):
    dm = MNISTDataModule(data_dir=str(idx_root), batch_size=16, on_device=False)
    dm.setup("fit")
    x, y = next(iter(dm.val_dataloader()))
    for i in range(16):
        xi, yi = dm.val_set[i]
        assert torch.equal(x[i], xi) and y[i] == yi


def test_on_device_batches_train_exactly_like_the_dataloader(idx_root):
    """Same order (seed + epoch), same samples, same normalisation: the same loss at every step."""
    loader = train_losses(idx_root, "cpu", 2, lambda: MLP(lr_schedule="constant"), on_device=False)
    resident = train_losses(idx_root, "cpu", 2, lambda: MLP(lr_schedule="constant"), on_device=True)
    assert len(resident) == len(loader) == 2 * 9
    torch.testing.assert_close(resident, loader)


def test_device_batches_shard_like_a_distributed_sampler():
    images, labels = torch.arange(10).view(10, 1).float(), torch.arange(10)
    shards = [DeviceBatches(images, labels, batch_size=4, shuffle=True, seed=3, rank=r, world_size=3) for r in range(3)]
    for shard in shards:
        shard.sampler.set_epoch(1)
    seen = [torch.cat([y for _, y in shard]) for shard in shards]
    assert [len(s) for s in seen] == [4, 4, 4] and [len(shard) for shard in shards] == [1, 1, 1]
    assert set(torch.cat(seen).tolist()) == set(range(10))  # all samples, two repeated as padding
    order = DeviceBatches(images, labels, batch_size=4, shuffle=True, seed=3)
    order.sampler.set_epoch(1)
    assert torch.cat([y for _, y in order]).tolist() == list(order.sampler)  # the DataLoader path's order


@pytest.mark.parametrize(
    ("make_model", "on_device", "trainer_kwargs"),
    [
        (MLP, True, {}),  # the defaults: warm-up and cosine schedule, data on the device
        (Classifier, True, {}),  # dropout: the same random masks, step by step
        (MLP, False, {"gradient_clip_val": 0.05}),  # a DataLoader, and clipping (by norm) on the fast path
        (MLP, True, {"gradient_clip_val": 0.001, "gradient_clip_algorithm": "value"}),
        (partial(MLP, optimizer="sgd", lr=0.05), True, {}),  # the lesson's Part 3 optimizer
    ],
)
def test_the_fast_path_makes_the_per_step_paths_steps(idx_root, make_model, on_device, trainer_kwargs):
    """540 samples, steps of 64: loaded batches of 4 steps (256, 256, 28 samples) make the 9 steps a epoch of
    the per-step path: the same weights, step count, schedule and epoch metrics after 3 epochs."""
    data = {"on_device": on_device}
    _, plain = fit_tiny_mnist(idx_root, "cpu", 3, make_model, trainer_kwargs=trainer_kwargs, **data)
    _, fast = fit_tiny_mnist(idx_root, "cpu", 3, make_model, [FastPath(4)], trainer_kwargs, **data)
    assert fast.lightning_module.step_engine is not None and plain.lightning_module.step_engine is None
    assert fast.global_step == plain.global_step == 3 * 9
    for a, b in zip(weights(fast), weights(plain), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert fast.optimizers[0].param_groups[0]["lr"] == plain.optimizers[0].param_groups[0]["lr"]
    for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
        torch.testing.assert_close(fast.callback_metrics[key], plain.callback_metrics[key])


def test_max_steps_counts_optimizer_steps_on_the_fast_path(idx_root):
    _, plain = fit_tiny_mnist(idx_root, "cpu", 3, MLP, trainer_kwargs={"max_steps": 6})
    _, fast = fit_tiny_mnist(idx_root, "cpu", 3, MLP, [FastPath(4)], {"max_steps": 6})
    assert fast.global_step == plain.global_step == 6
    for a, b in zip(weights(fast), weights(plain), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class GradientWatcher(Callback):
    def __init__(self) -> None:
        self.calls = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1


def test_a_callback_with_a_per_step_hook_gets_the_per_step_path(idx_root, caplog):
    watcher = GradientWatcher()
    _, trainer = fit_tiny_mnist(idx_root, "cpu", 1, MLP, [FastPath(4), watcher])
    assert trainer.lightning_module.step_engine is None and trainer.lightning_module.automatic_optimization
    assert watcher.calls == trainer.global_step == 9  # its hook ran at every optimizer step
    assert "fast path off: the callback GradientWatcher has on_after_backward" in caplog.text


def test_accumulation_gets_the_per_step_path(idx_root, caplog):
    _, trainer = fit_tiny_mnist(idx_root, "cpu", 1, MLP, [FastPath(4)], {"accumulate_grad_batches": 2})
    assert trainer.lightning_module.step_engine is None and trainer.global_step == 5
    assert "fast path off: --trainer.accumulate_grad_batches 2" in caplog.text


def test_a_resumed_fast_run_ends_with_the_per_step_runs_weights(idx_root, tmp_path):
    """Stopped after epoch 1 on the fast path and resumed from its checkpoint: the weights and step count of an
    uninterrupted run on the per-step path."""
    _, first = fit_tiny_mnist(idx_root, "cpu", 3, MLP, [FastPath(4), StopAfter(1)])  # an interruption
    first.save_checkpoint(tmp_path / "epoch0.ckpt")
    _, resumed = fit_tiny_mnist(
        idx_root, "cpu", 3, MLP, [FastPath(4)], {"default_root_dir": str(tmp_path)}, ckpt_path=tmp_path / "epoch0.ckpt"
    )
    _, plain = fit_tiny_mnist(idx_root, "cpu", 3, MLP)
    assert resumed.global_step == plain.global_step == 3 * 9
    for a, b in zip(weights(resumed), weights(plain), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
