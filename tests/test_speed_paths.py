"""The fast paths compute what the plain ones do (their timing is for benchmarks/, not tests)."""

import torch
from conftest import fit_tiny_mnist, train_losses
from torch import nn

from datamodules import MNISTDataModule
from datamodules.device_batches import DeviceBatches
from modules import MLP


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
    dm = MNISTDataModule(data_dir=str(idx_root), batch_size=16)
    dm.setup("fit")
    x, y = next(iter(dm.val_dataloader()))
    for i in range(16):
        xi, yi = dm.val_set[i]
        assert torch.equal(x[i], xi) and y[i] == yi


def test_on_device_batches_train_exactly_like_the_dataloader(idx_root):
    """Same order (seed + epoch), same samples, same normalisation: the same loss at every step."""
    loader = train_losses(idx_root, "cpu", 2, lambda: MLP(lr_schedule="constant"))
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


def test_cuda_graph_off_a_gpu_runs_the_same_steps_eagerly_without_a_warning(idx_root, recwarn):
    eager = train_losses(idx_root, "cpu", 2, lambda: MLP(), on_device=True)
    manual = train_losses(idx_root, "cpu", 2, lambda: MLP(cuda_graph=True), on_device=True)
    torch.testing.assert_close(manual, eager)
    assert not [w for w in recwarn if "cuda_graph" in str(w.message)]  # nothing a CPU user could act on


def test_step_batch_makes_the_lesson_steps_from_larger_loaded_batches(idx_root):
    """Batches of 128 split into steps of 64 train exactly as batches of 64: same order, same updates, and the
    same cosine schedule (540 samples: 4 x 2 + 1 steps an epoch, where Lightning counts 5 loaded batches)."""
    _, plain = fit_tiny_mnist(idx_root, "cpu", 2, lambda: MLP())
    _, split = fit_tiny_mnist(idx_root, "cpu", 2, lambda: MLP(step_batch=64), batch_size=128, on_device=True)
    assert split.global_step == plain.global_step == 2 * 9  # optimizer steps, as Lightning counts them
    for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
        torch.testing.assert_close(split.callback_metrics[key], plain.callback_metrics[key])
    for a, b in zip(split.lightning_module.parameters(), plain.lightning_module.parameters(), strict=True):
        torch.testing.assert_close(a, b)
