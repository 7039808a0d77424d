"""The lesson's transfer model: a frozen backbone, the lesson's head."""

import pytest
import torch

from modules import ModelError, TransferModel
from modules.backbones import BACKBONES, efficientnet_lite0_state_dict
from tests.helpers.data import photo_module
from tests.helpers.training import quiet_trainer

pytestmark = pytest.mark.usefixtures("in_tmp_path")  # the feature cache goes there, not into the repo


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "efficientnet_lite0"])
def test_backbones_give_features_of_the_declared_width(name):
    model = TransferModel(backbone=name, weights="none", num_classes=3)
    with torch.no_grad():
        feats = model.extract_features(torch.randn(2, 3, 64, 64))
        out = model(torch.randn(2, 3, 64, 64))
    assert feats.shape == (2, BACKBONES[name].features)
    assert out.shape == (2, 3) and torch.allclose(out.exp().sum(1), torch.ones(2), atol=1e-5)


def test_efficientnet_lite0_imagenet_weights_load_strictly_offline():
    state = efficientnet_lite0_state_dict()
    assert "conv_stem.weight" in state and state["classifier.weight"].shape == (1000, 1280)
    model = TransferModel(backbone="efficientnet_lite0", weights="imagenet")
    torch.testing.assert_close(model.backbone.conv_stem.weight, state["conv_stem.weight"])
    assert not model.backbone.bn2.running_var.allclose(torch.ones(1280))  # real statistics, not init


def test_head_is_the_lessons_and_only_it_trains():
    model = TransferModel(backbone="resnet18", weights="none")
    kinds = [type(m).__name__ for m in model.head]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "LogSoftmax"]
    assert model.head[0].out_features == 256 and model.head[2].p == 0.2
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.head.parameters()}
    assert all(not p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training and model.head.training


def test_an_epoch_leaves_the_backbone_untouched_and_the_head_learns(photo_root):
    torch.manual_seed(0)
    model = TransferModel(backbone="resnet18", weights="none", lr=0.01)
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    quiet_trainer(max_epochs=2).fit(model, datamodule=photo_module(photo_root, augment=True))
    for key, value in model.backbone.state_dict().items():  # weights and BatchNorm buffers alike
        assert torch.equal(value, backbone_before[key]), key
    assert any(not torch.equal(v, head_before[k]) for k, v in model.head.state_dict().items())


def test_unknown_backbone_and_missing_weights_file():
    with pytest.raises(ModelError, match="unknown backbone 'vgg99': choose one of densenet121"):
        TransferModel(backbone="vgg99")
    with pytest.raises(ModelError, match="does not exist"):
        TransferModel(backbone="resnet18", weights="/nonexistent/weights.pth")


def test_local_weights_file_loads(tmp_path):
    source = TransferModel(backbone="resnet18", weights="none")
    path = tmp_path / "resnet18.pth"
    torch.save(source.backbone.state_dict(), path)
    model = TransferModel(backbone="resnet18", weights=str(path))
    torch.testing.assert_close(model.backbone.conv1.weight, source.backbone.conv1.weight)


@pytest.mark.long
def test_backbone_can_be_unfrozen_later_with_lightnings_backbone_finetuning(photo_root):
    from lightning.pytorch.callbacks import BackboneFinetuning

    torch.manual_seed(0)
    model = TransferModel(backbone="resnet18", weights="none")
    before = model.backbone.conv1.weight.clone()
    finetune = BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_ratio_lr=0.1)
    quiet_trainer(max_epochs=1, callbacks=[finetune]).fit(model, datamodule=photo_module(photo_root))
    assert torch.equal(model.backbone.conv1.weight, before)  # frozen during epoch 0
    model = TransferModel(backbone="resnet18", weights="none")
    before = model.backbone.conv1.weight.clone()
    finetune = BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_ratio_lr=0.1)
    quiet_trainer(max_epochs=2, callbacks=[finetune]).fit(model, datamodule=photo_module(photo_root))
    assert not model.backbone_frozen and not torch.equal(model.backbone.conv1.weight, before)
