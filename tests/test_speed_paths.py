"""The fast paths compute what the plain ones do (their timing is for benchmarks/, not tests)."""

import torch
from torch import nn

from datamodules import MNISTDataModule
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
