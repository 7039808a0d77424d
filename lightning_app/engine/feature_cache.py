"""Backbone features computed once per photo and kept: in memory for the run, on disk for the next run."""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, Subset
from upath import UPath

from lightning_app.contracts import FeatureCacheable, FeatureExtractor, offers
from lightning_app.engine.device_decoding import device_batches
from lightning_app.engine.inference_backbone import inference_copy
from lightning_app.engine.onnx_features import onnxruntime_extractor
from lightning_app.errors import SettingError, first_line
from lightning_app.notices import notice
from lightning_app.runs import user_cache
from lightning_app.runs.checkpoints import load_checkpoint
from lightning_app.runs.storage import location, replace_file
from modules import ModelError

SPLITS = {"fit": ("train", "val", "test"), "validate": ("val",), "test": ("test",)}
ENGINES = ("auto", "onnxruntime", "torch")


def weights_digest(module: torch.nn.Module) -> str:
    """A digest of a module's class and every tensor of its state (names, shapes, bytes)."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class FeatureCache(Callback):
    """Train, validate and test a frozen-backbone model on backbone features computed once, not every epoch.

    At ``fit`` the train, val and test photos go through a faster copy of the frozen backbone once
    (``engine/inference_backbone.py``: BatchNorm folded, channels_last) in batches of ``batch_size``; every epoch
    then costs only the head, and the test after ``fit`` reuses the test features. ``views`` = 1 caches the
    evaluation transform of each training image (no augmentation); ``views`` = K caches K augmented views,
    K times the pass, and epoch ``e`` uses view ``e % K``.

    With ``on_disk`` the features are also kept in ``<default_root_dir>/feature_cache/``, one file per split,
    named by a digest of the photos (each file's path and bytes), the labels, the transform
    and normalisation, and the backbone's weights: a second run on the same photos and backbone reads them in
    a moment. A file whose digest, shape or labels do not match, or that does not load, is rebuilt with a
    warning, never trusted; nothing else is kept, and deleting the folder is always safe.

    ``engine``: on a CPU, ``auto`` runs the pass in onnxruntime where it is installed (the ``[export]`` extra;
    faster on a CPU, see docs/speed.md) and in PyTorch otherwise; ``onnxruntime`` insists,
    ``torch`` never uses it. On a GPU the pass always runs in PyTorch, and JPEGs are decoded, resized and cropped
    there (``engine/device_decoding.py``; ``decode_on_device: false`` decodes them in the loader's workers).

    Under DDP the pass is shared: each process runs the backbone over every ``world_size``-th photo of a split,
    the shares are gathered (``strategy.all_gather``) so every process holds the whole table, and rank 0 writes
    it. The processes first agree whether the table is already at hand (``reduce_boolean_decision``), so none
    waits in a gather the others skip; ``photos_run`` counts this process's photos.
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(
        self,
        views: int = 1,
        batch_size: int = 16,
        on_disk: bool = True,
        engine: str = "auto",
        decode_on_device: bool = True,
    ) -> None:
        if views < 1 or batch_size < 1:
            raise SettingError(f"FeatureCache views and batch_size must be at least 1, got {views} and {batch_size}")
        if engine not in ENGINES:
            raise SettingError(f"FeatureCache engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.views, self.batch_size, self.on_disk, self.engine = views, batch_size, on_disk, engine
        self.decode_on_device = decode_on_device
        self.engine_used = ""
        self.photos_run = 0  # photos (times views) this process ran through the backbone
        self.pass_seconds = 0.0  # and the seconds that took, decoding included
        self._memory: dict[str, torch.Tensor] = {}
        self._weights: dict[int, str] = {}
        self._extractor_made = None  # the backbone's runner of this pass, made when a split needs it

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Runs after the datamodule's ``setup`` and before any dataloader is made."""
        splits = SPLITS.get(stage, ())
        if not splits:
            return
        datamodule = trainer.datamodule
        if not offers(pl_module, FeatureExtractor) or not isinstance(datamodule, FeatureCacheable):
            raise ModelError(
                "FeatureCache needs a TransferModel and an image-folder datamodule: remove it from the config"
            )
        if not pl_module.backbone_frozen:
            raise ModelError("FeatureCache needs a frozen backbone: remove it when fine-tuning the backbone")
        start = time.perf_counter()
        device = trainer.strategy.root_device
        was_training = pl_module.training
        pl_module.to(device).eval()
        done, self._extractor_made = [], None
        try:
            for split in splits:
                views = self.views if split == "train" else 1
                found = self.features(trainer, pl_module, datamodule, split, views)
                if found is None:
                    continue
                features, labels, source = found
                datamodule.use_features(split, features.to(device), labels, views)
                done.append(f"{len(features)} {split}" + (f" ({source})" if source != "backbone" else ""))
        finally:
            pl_module.train(was_training)
        engine = f" ({self.engine_used})" if self._extractor_made is not None else ""
        notice(f"FeatureCache: {', '.join(done)} features in {time.perf_counter() - start:.1f} s on {device}{engine}")

    def features(
        self, trainer: Trainer, pl_module: LightningModule, datamodule: FeatureCacheable, split: str, views: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, str] | None:
        """The backbone's features of ``split`` (N x views, F), their labels and where they came from (memory, disk
        or the backbone), or None for an empty split: what ``setup`` trains on, and what ``check`` compares.
        ``pl_module`` is on the Trainer's device, in eval mode."""
        device = trainer.strategy.root_device
        images, labels, identity = datamodule.feature_inputs(split, views)
        if not len(images):
            return None
        key = hashlib.sha256(f"{identity}{self._weights_of(pl_module)}".encode()).hexdigest()
        features = self._memory.get(key)
        source = "memory"
        if features is None:
            features, source = self._read(trainer, key, labels, pl_module.feature_width), "disk"
        if trainer.world_size > 1 and not trainer.strategy.reduce_boolean_decision(features is not None, all=True):
            features = None  # one process lacks it: all of them make it together
        if features is None:
            if self._extractor_made is None:
                self._extractor_made = self._extractor(pl_module, datamodule, images, device)
            features = self._pass(trainer, split, images, self._extractor_made, datamodule, views)
            features = self._gathered(trainer, features, len(images), views, pl_module.feature_width)
            source = "backbone"
            self._write(trainer, key, features, labels)
        self._memory[key] = features
        return features, labels, source

    # ---- the pass ------------------------------------------------------------------------------------------

    def _weights_of(self, pl_module: LightningModule) -> str:
        if id(pl_module.backbone) not in self._weights:
            self._weights[id(pl_module.backbone)] = weights_digest(pl_module.backbone)
        return self._weights[id(pl_module.backbone)]

    @staticmethod
    def _bf16(trainer: Trainer, device: torch.device) -> bool:
        return device.type == "cuda" and "bf16" in str(trainer.precision)

    def _extractor(self, pl_module, datamodule, images, device):
        """On a CPU, onnxruntime where installed (``engine`` auto or onnxruntime); else the model's fast frozen
        copy of its backbone. Either is checked against the backbone on the first image."""
        sample = datamodule.normalize(torch.stack([images[0][0]]).to(device))
        if device.type == "cpu" and self.engine != "torch":
            extract = onnxruntime_extractor(pl_module.backbone, sample, threads=torch.get_num_threads())
            if extract is not None:
                self.engine_used = "onnxruntime"
                return extract
            if self.engine == "onnxruntime":
                raise ModelError(
                    "FeatureCache engine onnxruntime: onnxruntime is not installed or cannot run this backbone: "
                    "pip install -e '.[export]', or use engine: auto"
                )
        self.engine_used = "torch"
        copy = inference_copy(pl_module.backbone, sample)
        return lambda images: copy(images.contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def _pass(self, trainer: Trainer, split: str, images, extract, datamodule, views: int) -> torch.Tensor:
        """``views`` passes over ``images`` through ``extract``, reporting progress every few seconds. The random
        state is put back afterwards (the loader draws its workers' seeds from it): a later run that reads the
        features from disk then trains exactly as this one."""
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            features = self._extract_all(trainer, split, images, extract, datamodule, views)
        self.pass_seconds += time.perf_counter() - start
        return features

    def _extract_all(self, trainer: Trainer, split: str, images, extract, datamodule, views: int) -> torch.Tensor:
        """``views`` passes over this process's share of ``images``: (views * share, features)."""
        if trainer.world_size > 1:
            images = Subset(images, range(trainer.global_rank, len(images), trainer.world_size))
        total, done, out = views * len(images), 0, []
        start = last = time.perf_counter()
        device = trainer.strategy.root_device
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self._bf16(trainer, device))
        with autocast:
            for _ in range(views):
                for x in self._batches(images, device, datamodule.num_workers):
                    x = datamodule.normalize(x)
                    out.append(extract(x).float().cpu())  # each engine takes the memory layout it runs on
                    done += len(x)
                    self.photos_run += len(x)
                    if time.perf_counter() - last > 5 and done < total:
                        last = time.perf_counter()
                        rate = done / (last - start)
                        notice(f"FeatureCache: {split} {done}/{total} photos ({rate:.0f}/s)")
        return torch.cat(out) if out else torch.empty(0, 0)

    def _batches(self, images, device: torch.device, num_workers: int):
        """uint8 image batches on ``device``: photo files decoded there on a GPU, else the images' own loader."""
        if device.type == "cuda" and self.decode_on_device:
            decoded = device_batches(images, self.batch_size, device, num_workers)
            if decoded is not None:
                return decoded
        loader = DataLoader(images, batch_size=self.batch_size, num_workers=num_workers)
        return (x.to(device, non_blocking=True) for x, _ in loader)

    @staticmethod
    def _gathered(trainer: Trainer, local: torch.Tensor, n: int, views: int, width: int) -> torch.Tensor:
        """The whole table (views * n, width) in one process's order, from each process's share (photos
        ``rank::world_size``). Shares are padded to one length, as ``all_gather`` needs."""
        world = trainer.world_size
        if world == 1:
            return local
        longest = -(-n // world)
        padded = torch.zeros(views, longest, width)
        mine = len(range(trainer.global_rank, n, world))
        padded[:, :mine] = local.reshape(views, mine, width)
        shares = trainer.strategy.all_gather(padded.to(trainer.strategy.root_device)).cpu()  # (world, views, ...)
        table = torch.empty(views, n, width)
        for rank in range(world):
            table[:, rank::world] = shares[rank, :, : len(range(rank, n, world))]
        return table.reshape(views * n, width)

    # ---- on disk -------------------------------------------------------------------------------------------

    def _path(self, trainer: Trainer, key: str) -> UPath | None:
        if not self.on_disk:
            return None
        return location(trainer.default_root_dir or "logs") / "feature_cache" / f"{key[:32]}.pt"

    def _read(self, trainer: Trainer, key: str, labels: torch.Tensor, width: int) -> torch.Tensor | None:
        path = self._path(trainer, key)
        if path is None or not path.is_file():
            return None
        try:
            saved = load_checkpoint(path)  # as data: weights_only=True
            features = saved["features"]
            if saved["key"] != key or len(features) != len(labels) or not torch.equal(saved["labels"], labels):
                raise ValueError("it was made for other photos")
            if not isinstance(features, torch.Tensor) or features.dtype != torch.float32 or features.ndim != 2:
                raise ValueError("it does not hold a float32 (N, F) table")
            if features.shape[1] != width:
                raise ValueError(f"its features are {features.shape[1]} wide, the backbone's {width}")
            if not torch.isfinite(features).all():
                raise ValueError("its features are not all finite")
            mac = saved.get("signature")
            if not isinstance(mac, str) or not hmac.compare_digest(mac, self._signature(key, features, labels) or "-"):
                raise ValueError("it is not signed by this user's key (made elsewhere, or changed)")
        except Exception as err:  # noqa: BLE001 - any unreadable or mismatched file is rebuilt
            warnings.warn(f"rebuilding the feature cache {path}: {first_line(err, 100)}", stacklevel=2)
            return None
        return features.float()

    @staticmethod
    def _signature(key: str, features: torch.Tensor, labels: torch.Tensor) -> str | None:
        """An HMAC of the table with this user's key (runs/user_cache.py): a planted or edited file, even one with
        the right key, shapes and dtype, is rebuilt instead of trained on."""
        secret = user_cache.signing_key()
        if secret is None:
            return None
        mac = hmac.new(secret, key.encode(), hashlib.sha256)
        mac.update(features.detach().cpu().contiguous().float().numpy().tobytes())
        mac.update(labels.detach().cpu().contiguous().long().numpy().tobytes())
        return mac.hexdigest()

    def _write(self, trainer: Trainer, key: str, features: torch.Tensor, labels: torch.Tensor) -> None:
        path = self._path(trainer, key)
        if path is None or not trainer.is_global_zero:
            return
        signature = self._signature(key, features, labels)
        if signature is None:
            return  # no private key to sign with: a file could not be told from a planted one
        saved = {"key": key, "features": features, "labels": labels, "signature": signature}
        try:
            replace_file(path, lambda handle: torch.save(saved, handle))
        except OSError as err:  # a full or read-only disk: the run goes on without a file for the next one
            warnings.warn(f"could not keep the features in {path} ({err.strerror or err})", stacklevel=2)
