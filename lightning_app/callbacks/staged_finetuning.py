"""Staged fine-tuning, the step after the lesson's frozen backbone (``-c catdog_finetune``)."""

from __future__ import annotations

from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.optim import Optimizer

from lightning_app.errors import TrainingError
from modules.backbones import BATCH_NORMS


class StagedFinetuning(BaseFinetuning):
    """Train the head with the backbone frozen, then unfreeze the whole backbone at epoch
    ``unfreeze_at_epoch`` with ``backbone_lr_ratio`` times the head's base rate; both then follow the run's
    schedule.

    Built on Lightning's ``BaseFinetuning`` hooks rather than ``BackboneFinetuning``, whose freezing leaves
    BatchNorm weights trainable from the start (``train_bn=True`` in ``freeze_before_training``) and which does not
    unfreeze the backbone again when a run resumes after the unfreezing epoch.

    BatchNorm on purpose: with ``train_bn`` false (the default) the BatchNorm layers keep their ImageNet weights and
    running statistics (the model keeps a BatchNorm layer whose weights are frozen in eval mode); batches of 32
    photos of two classes are a poor estimate of them. ``train_bn`` true trains them and lets the statistics move.

    Args:
        unfreeze_at_epoch: the first epoch (0-based) that trains the backbone.
        backbone_lr_ratio: the backbone's rate as a fraction of the model's ``lr``.
        train_bn: train the BatchNorm layers too.
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self, unfreeze_at_epoch: int = 1, backbone_lr_ratio: float = 0.01, train_bn: bool = False) -> None:
        super().__init__()
        if unfreeze_at_epoch < 0 or backbone_lr_ratio <= 0:
            raise TrainingError("StagedFinetuning needs unfreeze_at_epoch >= 0 and backbone_lr_ratio > 0")
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.backbone_lr_ratio = backbone_lr_ratio
        self.train_bn = train_bn

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        self.freeze(self._backbone(pl_module), train_bn=False)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        """At the unfreezing epoch, and at any later one a resumed run starts with: unfreeze, and add the
        backbone's parameter group unless the checkpoint brought it back."""
        if epoch < self.unfreeze_at_epoch:
            return
        backbone = self._backbone(pl_module)
        trained = self._trained(backbone)
        if all(p.requires_grad for p in trained):
            return
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if all(id(p) in held for p in trained):
            self.make_trainable(backbone)  # a resumed run: its checkpoint brought the backbone's group back
        else:
            head = optimizer.param_groups[0]
            base = head.get("initial_lr", head["lr"])  # the rate before the schedule's decay
            lr = float(base) * self.backbone_lr_ratio
            self.unfreeze_and_add_param_group(backbone, optimizer, lr=lr, train_bn=self.train_bn)
        if not self.train_bn:
            for layer in backbone.modules():
                if isinstance(layer, BATCH_NORMS):
                    layer.requires_grad_(False)
        pl_module.train(pl_module.training)  # the model decides train/eval mode of the layers now frozen or not

    def _trained(self, module: nn.Module) -> list[nn.Parameter]:
        return [
            p
            for layer in module.modules()
            if self.train_bn or not isinstance(layer, BATCH_NORMS)
            for p in layer.parameters(recurse=False)
        ]

    @staticmethod
    def _backbone(pl_module: LightningModule) -> nn.Module:
        backbone = getattr(pl_module, "backbone", None)
        if not isinstance(backbone, nn.Module):
            raise TrainingError(f"StagedFinetuning needs a model with a backbone; {type(pl_module).__name__} has none")
        return backbone
