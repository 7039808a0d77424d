"""The frozen-backbone transfer model: backbones, freezing, learning, cached features."""

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from lightning_app.engine.feature_cache import FeatureCache
from lightning_app.engine.inference_backbone import inference_copy
from modules import TransferModel
from tests.helpers.data import photo_module
from tests.helpers.training import quiet_trainer

pytestmark = pytest.mark.usefixtures("in_tmp_path")  # the feature cache goes there, not into the repo


def test_cached_features_predict_like_recomputing(photo_root):
    torch.manual_seed(0)
    model = TransferModel(backbone="resnet18", weights="none")
    dm = photo_module(photo_root, augment=False)
    quiet_trainer(max_epochs=1, callbacks=[FeatureCache()]).fit(model, datamodule=dm)
    n_train = len(dm.split_files()["train"][0])
    assert dm.train_set.images.shape == (n_train, 512)  # features, not images
    model.eval()
    fresh = photo_module(photo_root, augment=False)
    fresh.setup("fit")
    with torch.no_grad():
        for (x, y), (f, fy) in zip(fresh.val_dataloader(), dm.val_dataloader(), strict=True):
            recomputed = model(fresh.on_after_batch_transfer((x, y), 0)[0])
            torch.testing.assert_close(model(f), recomputed, rtol=1e-4, atol=1e-5)
            assert torch.equal(y, fy)


def test_cached_augmented_views_cycle_by_epoch(photo_root):
    model = TransferModel(backbone="resnet18", weights="none")
    dm = photo_module(photo_root)
    quiet_trainer(max_epochs=3, callbacks=[FeatureCache(views=2)]).fit(model, datamodule=dm)
    n_train = len(dm.split_files()["train"][0])
    assert dm.train_set.images.shape == (2 * n_train, 512)
    quiet_trainer(max_epochs=1, callbacks=[FeatureCache(views=2)]).fit(model, datamodule=dm)  # caches again
    assert dm.train_set.images.shape == (2 * n_train, 512)
    sampler = dm.train_dataloader().sampler
    sampler.set_epoch(1)
    assert len(sampler) == n_train and min(sampler) == n_train  # epoch 1 reads the second view


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "efficientnet_lite0"])
def test_the_fast_frozen_copy_gives_the_backbones_features(name):
    """BatchNorm folded into the convolutions and channels_last: the same features to float rounding."""
    torch.manual_seed(0)
    model = TransferModel(backbone=name, weights="none").eval()
    for module in model.backbone.modules():  # BatchNorm statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    images = torch.randn(3, 3, 64, 64)
    fast = inference_copy(model.backbone, images[:1])
    assert fast is not model.backbone
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()) < sum(
        isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules()
    )
    with torch.no_grad():
        expected = model.extract_features(images)
        got = fast(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def fit_cached(photo_root, seed: int = 0) -> tuple[TransferModel, object]:
    torch.manual_seed(seed)
    model = TransferModel(backbone="resnet18", weights="none")
    dm = photo_module(photo_root, augment=False)
    quiet_trainer(max_epochs=1, callbacks=[FeatureCache()]).fit(model, datamodule=dm)
    return model, dm


def test_a_second_fit_reads_the_features_from_disk(photo_root, monkeypatch):
    model, first = fit_cached(photo_root)
    files = sorted(Path("feature_cache").glob("*.pt"))
    assert len(files) == 3  # train, val and test
    monkeypatch.setattr("lightning_app.engine.feature_cache.inference_copy", lambda *a: pytest.fail("ran the backbone"))
    monkeypatch.setattr(
        "lightning_app.engine.feature_cache.onnxruntime_extractor", lambda *a, **k: pytest.fail("ran it")
    )
    again, second = fit_cached(photo_root)
    for split in ("train", "val", "test"):
        a, b = getattr(first, f"{split}_set"), getattr(second, f"{split}_set")
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    # the pass leaves the random state as it found it: the run from cached features trains the same head
    for (name, value), (_, other) in zip(model.head.state_dict().items(), again.head.state_dict().items(), strict=True):
        assert torch.equal(value, other), name


@pytest.mark.long
def test_other_photos_or_weights_make_new_features(photo_root):
    photo = photo_root / "cat" / "uncompressed.bmp"
    Image.new("RGB", (48, 40), (200, 30, 30)).save(photo)
    fit_cached(photo_root)
    assert len(list(Path("feature_cache").glob("*.pt"))) == 3
    stat = photo.stat()
    Image.new("RGB", (48, 40), (30, 30, 200)).save(photo)  # another picture, the same size in bytes
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and its date put back: its bytes still tell
    assert photo.stat().st_size == stat.st_size and photo.stat().st_mtime_ns == stat.st_mtime_ns
    fit_cached(photo_root)
    assert len(list(Path("feature_cache").glob("*.pt"))) == 4  # its split was computed again
    fit_cached(photo_root, seed=1)  # another backbone's weights
    assert len(list(Path("feature_cache").glob("*.pt"))) == 7


@pytest.mark.parametrize(
    "damage", ["garbage", "other width", "half precision", pytest.param("other labels", marks=pytest.mark.long)]
)
def test_a_damaged_cache_file_is_rebuilt_with_a_warning(photo_root, damage):
    _, first = fit_cached(photo_root)
    for path in Path("feature_cache").glob("*.pt"):
        if damage == "garbage":
            path.write_bytes(b"not a torch file")
        else:
            saved = torch.load(path, weights_only=True)
            if damage == "other labels":
                saved["labels"] = 1 - saved["labels"]
            elif damage == "other width":  # the right key, another backbone's width: once a 96-line traceback
                saved["features"] = saved["features"][:, :100].clone()
            else:
                saved["features"] = saved["features"].half()
            torch.save(saved, path)
    reason = {"other width": "are 100 wide, the backbone's 512", "half precision": "float32"}.get(damage, "")
    with pytest.warns(UserWarning, match=f"rebuilding the feature cache .*{reason}"):
        _, second = fit_cached(photo_root)
    assert torch.allclose(first.train_set.images, second.train_set.images, atol=1e-5)
    assert torch.equal(second.train_set.labels, first.train_set.labels)


def test_the_test_after_fit_reads_cached_test_features(photo_root):
    model, dm = fit_cached(photo_root)
    assert dm.test_set.images.ndim == 2  # features
    result = quiet_trainer(callbacks=[FeatureCache()]).test(model, datamodule=dm)
    assert 0 <= result[0]["test/acc"] <= 1


@pytest.mark.parametrize("name", ["resnet18", pytest.param("efficientnet_lite0", marks=pytest.mark.long)])
def test_the_onnxruntime_pass_gives_pytorchs_features(photo_root, name):
    """engine auto runs the CPU pass in onnxruntime (installed with [dev]); torch never does; both give the
    same features to float rounding."""
    pytest.importorskip("onnxruntime")
    features = {}
    for engine in ("auto", "torch"):
        torch.manual_seed(0)
        model = TransferModel(backbone=name, weights="none")
        dm = photo_module(photo_root, augment=False)
        cache = FeatureCache(engine=engine, on_disk=False)
        quiet_trainer(max_epochs=1, limit_train_batches=0, callbacks=[cache]).fit(model, datamodule=dm)
        features[engine] = dm.train_set.images
        assert cache.engine_used == ("onnxruntime" if engine == "auto" else "torch")
    scale = float(features["torch"].abs().max())
    torch.testing.assert_close(features["auto"], features["torch"], rtol=1e-3, atol=1e-4 * scale)


def test_the_transfer_model_offers_what_the_feature_cache_needs():
    """By hasattr, as on Python 3.11: from 3.12 isinstance with a runtime protocol misses nn.Module submodules."""
    from lightning_app.contracts import FeatureExtractor, offers
    from modules import MLP, TransferModel

    assert offers(TransferModel(backbone="resnet18", weights="none"), FeatureExtractor)
    assert not offers(MLP(), FeatureExtractor)


def test_a_planted_table_with_the_right_key_and_shapes_is_rebuilt_not_used(tmp_path):
    """Other features under the right key, shapes and dtype (1.0 would become 0.0): not signed by this user's key."""
    from types import SimpleNamespace

    import torch

    from lightning_app.engine.feature_cache import FeatureCache

    cache = FeatureCache()
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), is_global_zero=True)
    features, labels = torch.ones(4, 3), torch.tensor([0, 1, 0, 1])
    cache._write(trainer, "k" * 64, features, labels)
    assert torch.equal(cache._read(trainer, "k" * 64, labels, 3), features)  # its own table, read back
    path = cache._path(trainer, "k" * 64)
    saved = torch.load(path, weights_only=True)
    saved["features"] = torch.zeros(4, 3)
    torch.save(saved, path)
    with pytest.warns(UserWarning, match="not signed by this user's key"):
        assert cache._read(trainer, "k" * 64, labels, 3) is None


def test_a_cache_file_of_compressed_records_is_refused_before_torch_inflates_it(tmp_path):
    import zipfile

    from modules.errors import ModelError
    from modules.weights import safe_load

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * (64 << 20))  # 64 MB of zeros in about 64 kB
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ModelError, match="a compressed record"):
        safe_load(bomb)
