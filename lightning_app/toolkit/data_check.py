"""``check``: what a data set holds before a model trains on it (``python -m lightning_app check``).

Every item of every split, split as ``fit`` splits it (the datamodule's ``inventory``), is read once by the
datamodule's own reader. From that one pass:

- **duplicates**: the same pixels under two names (exact: a digest of the decoded pixels), or the same picture
  resized, recompressed or lightly cropped (near: the correlation of 32x32 grey thumbnails at least ``near``),
  in groups; a group whose members sit in different splits is a **leak**;
- **likely label errors**: cleanlab's ``find_label_issues`` on out-of-fold class probabilities from scikit-learn
  (a logistic regression on the frozen backbone's features where the model has one, the feature cache reused;
  otherwise nearest neighbours on the thumbnails' principal components);
- **unreadable** files (the reader's own reasons), class balance, sizes and aspect ratios.

It writes ``check.json``, ``duplicates.png`` and ``label_issues.png`` to the run folder and the pictures to
TensorBoard, and prints a summary; ``fail_on`` turns findings into an error for CI.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - torch's own alias
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, Dataset

from datamodules.base import Inventory
from datamodules.errors import DataError
from lightning_app import figures
from lightning_app.callbacks.tensorboard_views import tensorboard
from lightning_app.contracts import Checkable, FeatureCacheable, FeatureExtractor, offers
from lightning_app.errors import AppError, SettingError, printable, require
from lightning_app.notices import notice
from lightning_app.runs.run_folders import run_dir
from lightning_app.runs.storage import location, replace_file
from lightning_app.step_progress import track

THUMB = 32  # the side of the grey thumbnails compared for near duplicates
FINDINGS = ("duplicates", "leaks", "label_issues", "unreadable")
PCA_WIDTH = 48  # the thumbnails' principal components that find candidate pairs (each then checked in full)
NEIGHBOURS = 8  # candidates per item


class CheckFailed(AppError):
    """``--fail_on`` named a finding that ``check`` found."""


@dataclass
class Scan:
    """What one pass over the items learnt: a digest of each readable item's pixels, its thumbnail and size."""

    digests: list[str | None]
    thumbs: torch.Tensor  # (N, THUMB * THUMB) float, zero for an unreadable item
    sizes: torch.Tensor  # (N, 2): height, width (0 when unreadable)
    unreadable: dict[int, str] = field(default_factory=dict)


def pixel_digest(image: torch.Tensor) -> str:
    return hashlib.sha256(f"{tuple(image.shape)}".encode() + image.contiguous().numpy().tobytes()).hexdigest()


def thumbnails(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) as (N, THUMB * THUMB) grey, antialiased."""
    grey = images.float().mean(dim=1, keepdim=True)
    return F.interpolate(grey, size=(THUMB, THUMB), mode="bilinear", antialias=True).flatten(1)


class ScannedItems(Dataset):
    """Each item read by the datamodule's reader, as (position, digest, thumbnail, height, width, error)."""

    def __init__(self, images: Dataset) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        try:
            image = self.images[index][0]
        except DataError as err:
            return index, None, torch.zeros(THUMB * THUMB), 0, 0, str(err)
        return index, pixel_digest(image), thumbnails(image[None])[0], image.shape[-2], image.shape[-1], None


def scan(inventory: Inventory, num_workers: int) -> Scan:
    """Read every item once: in memory (idx data) as whole tensors, files through a loader's workers."""
    n = len(inventory.names)
    if isinstance(inventory.images, torch.Tensor):
        images = inventory.images
        digests = [pixel_digest(image) for image in images]
        thumbs = torch.cat([thumbnails(images[i : i + 4096]) for i in range(0, n, 4096)]) if n else torch.empty(0)
        sizes = torch.tensor([images.shape[-2], images.shape[-1]]).repeat(n, 1)
        return Scan(digests, thumbs.reshape(n, -1), sizes)
    digests: list[str | None] = [None] * n
    thumbs = torch.zeros(n, THUMB * THUMB)
    sizes = torch.zeros(n, 2, dtype=torch.long)
    unreadable: dict[int, str] = {}
    loader = DataLoader(ScannedItems(inventory.images), batch_size=16, num_workers=num_workers, collate_fn=list)
    for batch in track(loader, len(loader), "check: reading the items, in batches of 16"):
        for index, digest, thumb, height, width, error in batch:
            if error is not None:
                unreadable[index] = error
                continue
            digests[index], thumbs[index], sizes[index] = digest, thumb, torch.tensor([height, width])
    return Scan(digests, thumbs, sizes, unreadable)


def correlations(thumbs: torch.Tensor) -> torch.Tensor:
    """Each thumbnail centred and scaled to unit length: their dot products are correlations."""
    centred = thumbs - thumbs.mean(dim=1, keepdim=True)
    return F.normalize(centred, dim=1)


def near_pairs(vectors: torch.Tensor, index: torch.Tensor, near: float, chunk: int = 2048) -> np.ndarray:
    """Pairs (i < j) of ``index``'s items whose unit ``vectors`` (one row per item of ``index``) have a dot product
    of at least ``near``: each item's ``NEIGHBOURS`` nearest candidates on the first principal components, each
    confirmed on the whole vector. Time and memory grow with N x chunk, never N x N."""
    x = vectors
    flat = x.norm(dim=1) < 0.5  # a flat picture (one colour) has no direction; exact digests find its copies
    y = x
    if len(x) > 4 * PCA_WIDTH and x.shape[1] > PCA_WIDTH:
        _, _, v = torch.pca_lowrank(x, q=PCA_WIDTH, center=False, niter=3)
        y = F.normalize(x @ v, dim=1)
    k = min(NEIGHBOURS + 1, len(y))
    found = []
    for start in range(0, len(y), chunk):
        block = y[start : start + chunk]
        cols = (block @ y.T).topk(k, dim=1).indices  # the nearest, the item itself among them
        rows = torch.arange(start, start + len(block)).unsqueeze(1).expand_as(cols)
        rows, cols = rows.reshape(-1), cols.reshape(-1)
        keep = rows != cols
        rows, cols = torch.minimum(rows[keep], cols[keep]), torch.maximum(rows[keep], cols[keep])
        close = ((x[rows] * x[cols]).sum(dim=1) >= near) & ~(flat[rows] | flat[cols])
        found.append(torch.stack([index[rows[close]], index[cols[close]]], dim=1))
    pairs = torch.cat(found) if found else torch.empty(0, 2, dtype=torch.long)
    return torch.unique(pairs, dim=0).numpy() if len(pairs) else np.empty((0, 2), dtype=np.int64)


def duplicate_groups(scan_: Scan, near: float, features: torch.Tensor | None, near_features: float) -> list[dict]:
    """Groups of two or more items that are copies of one picture, largest first: ``kind`` is ``exact`` when all
    share their pixels, else ``near``; ``members`` are positions. Near: thumbnails that correlate at least
    ``near`` (resized, recompressed), or backbone ``features`` (one row per item, where the model has a backbone)
    whose cosine is at least ``near_features`` (cropped too)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(scan_.digests)
    pairs = []
    first: dict[str, int] = {}
    for i, digest in enumerate(scan_.digests):
        if digest is not None:
            pairs.append((first.setdefault(digest, i), i))
    index = torch.tensor([i for i, d in enumerate(scan_.digests) if d is not None], dtype=torch.long)
    found = [np.array(pairs, dtype=np.int64).reshape(-1, 2), near_pairs(correlations(scan_.thumbs[index]), index, near)]
    if features is not None:
        found.append(near_pairs(F.normalize(features.float(), dim=1), torch.arange(len(features)), near_features))
    edges = np.concatenate(found)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for i, c in enumerate(component):
        members.setdefault(int(c), []).append(i)
    groups = []
    for group in members.values():
        if len(group) > 1:
            kind = "exact" if len({scan_.digests[i] for i in group}) == 1 else "near"
            groups.append({"kind": kind, "members": group})
    return sorted(groups, key=lambda g: (-len(g["members"]), g["members"][0]))


def probe_features(
    trainer: Trainer, model: LightningModule, datamodule: object, inventory: Inventory, scan_: Scan
) -> tuple[torch.Tensor, str]:
    """What the label probe reads: the frozen backbone's features (through the feature cache) where the model has
    a backbone and every item is readable, else the thumbnails' first 50 principal components."""
    if offers(model, FeatureExtractor) and isinstance(datamodule, FeatureCacheable) and not scan_.unreadable:
        from lightning_app.engine.feature_cache import FeatureCache

        cache = next((c for c in trainer.callbacks if isinstance(c, FeatureCache)), None) or FeatureCache()
        model.to(trainer.strategy.root_device).eval()
        parts = []
        for split in ("train", "val", "test"):
            found = cache.features(trainer, model, datamodule, split)
            if found is not None:
                parts.append(found[0].float().cpu())
        features = torch.cat(parts)
        if len(features) == len(inventory.names):
            return features, f"{type(model.backbone).__name__} features, logistic regression"
    x = correlations(scan_.thumbs)
    width = min(50, max(1, min(x.shape) - 1))
    _, _, v = torch.pca_lowrank(x, q=width, center=True, niter=3)
    why = " (no backbone features: some files are unreadable)" if offers(model, FeatureExtractor) else ""
    return (x - x.mean(dim=0)) @ v, f"thumbnails' principal components, nearest neighbours{why}"


def label_issues(x: np.ndarray, labels: np.ndarray, by_features: bool, folds: int, seed: int) -> list[tuple]:
    """(position, suggested class, its out-of-fold probability) of the likely label errors, worst first."""
    sklearn = require("sklearn", "check", "check's label issues")
    cleanlab_filter = require("cleanlab.filter", "check", "check's label issues")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    del sklearn
    counts = np.bincount(labels)
    folds = min(folds, int(counts[counts > 0].min()))
    if folds < 2 or (counts > 0).sum() < 2:
        return []
    if by_features:
        probe = LogisticRegression(max_iter=1000)
    else:
        probe = KNeighborsClassifier(n_neighbors=10, algorithm="brute")
    probs = cross_val_predict(
        probe, x, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba"
    )
    if probs.shape[1] < len(counts):  # a class with no item: its column is zero
        full = np.zeros((len(labels), len(counts)))
        full[:, np.unique(labels)] = probs
        probs = full
    ranked = cleanlab_filter.find_label_issues(
        labels=labels, pred_probs=probs, return_indices_ranked_by="self_confidence"
    )
    return [(int(i), int(probs[i].argmax()), float(probs[i].max())) for i in ranked]


@dataclass
class Report:
    """``check.json``'s content, and the positions the pictures show."""

    content: dict
    groups: list[dict]
    issues: list[tuple]


def report(
    inventory: Inventory,
    class_names: Sequence[str],
    scan_: Scan,
    groups: list[dict],
    issues: list[tuple],
    probe: str,
    seconds: float,
) -> Report:
    names, splits, labels = inventory.names, inventory.splits, inventory.labels.tolist()

    def item(i: int) -> dict:
        return {"file": names[i], "split": splits[i], "class": class_names[labels[i]]}

    duplicates = [{"kind": g["kind"], "files": [item(i) for i in g["members"]]} for g in groups]
    leaks = [d for d in duplicates if len({f["split"] for f in d["files"]}) > 1]
    present = sorted(set(splits), key=("train", "val", "test").index)
    counts = {
        split: {
            c: sum(1 for i in range(len(names)) if splits[i] == split and labels[i] == k)
            for k, c in enumerate(class_names)
        }
        for split in present
    }
    readable = scan_.sizes[:, 0] > 0
    heights, widths = scan_.sizes[readable, 0].float(), scan_.sizes[readable, 1].float()
    aspect = torch.maximum(heights, widths) / torch.minimum(heights, widths).clamp(min=1)
    odd_index = readable.nonzero().flatten()[(aspect > 3) | (torch.minimum(heights, widths) < 16)].tolist()

    def stats(values: torch.Tensor) -> dict:
        if not len(values):
            return {}
        return {"min": float(values.min()), "median": float(values.median()), "max": float(values.max())}

    content = {
        "items": len(names),
        "splits": {split: splits.count(split) for split in present},
        "class_counts": counts,
        "sizes": {"height": stats(heights), "width": stats(widths), "aspect": stats(aspect)},
        "odd": [{**item(i), "height": int(scan_.sizes[i, 0]), "width": int(scan_.sizes[i, 1])} for i in odd_index],
        "unreadable": [{**item(i), "reason": reason} for i, reason in sorted(scan_.unreadable.items())],
        "duplicates": duplicates,
        "leaks": leaks,
        "label_issues": [{**item(i), "suggested": class_names[s], "confidence": round(p, 4)} for i, s, p in issues],
        "label_probe": probe,
        "seconds": round(seconds, 1),
    }
    return Report(content, groups, issues)


def summary_lines(content: dict, folder: str, show: int) -> list[str]:
    """What the terminal shows: counts, then the worst few of each finding with their files."""
    splits = ", ".join(f"{n} {split}" for split, n in content["splits"].items())
    lines = [f"checked {content['items']} items ({splits}) in {content['seconds']} s"]
    for split, counts in content["class_counts"].items():
        lines.append(f"  {split}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    exact = sum(1 for d in content["duplicates"] if d["kind"] == "exact")
    lines.append(
        f"duplicates: {len(content['duplicates'])} groups ({exact} exact, {len(content['duplicates']) - exact} near), "
        f"{len(content['leaks'])} across splits (leaks)"
    )
    for group in (content["leaks"] or content["duplicates"])[:show]:
        files = "  ".join(f"{printable(f['file'], 120)} [{f['split']}]" for f in group["files"][:4])
        more = f"  (+{len(group['files']) - 4})" if len(group["files"]) > 4 else ""
        lines.append(f"  {group['kind']}: {files}{more}")
    lines.append(f"label issues: {len(content['label_issues'])} ({content['label_probe']})")
    for issue in content["label_issues"][:show]:
        lines.append(
            f"  {printable(issue['file'], 120)} [{issue['split']}]: filed as {issue['class']}, looks like "
            f"{issue['suggested']} ({issue['confidence']:.2f})"
        )
    lines.append(f"unreadable: {len(content['unreadable'])}")
    for bad in content["unreadable"][:show]:
        lines.append(f"  {printable(bad['reason'], 200)}")
    if content["odd"]:
        lines.append(f"odd sizes (aspect over 3:1 or a side under 16 px): {len(content['odd'])}")
    lines.append(f"report: {folder}/check.json")
    return lines


def pictures(report_: Report, inventory: Inventory, class_names: Sequence[str], show: int):
    """The duplicate groups (leaks first) and the top label issues, as figures."""
    from matplotlib.figure import Figure

    def image(i: int) -> torch.Tensor:
        if isinstance(inventory.images, torch.Tensor):
            return inventory.images[i]
        return inventory.images[i][0]

    made = {}
    groups = sorted(report_.groups, key=lambda g: len({inventory.splits[i] for i in g["members"]}) == 1)[:show]
    if groups:
        columns = min(4, max(len(g["members"]) for g in groups))
        fig = Figure(figsize=(3 * columns, 3 * len(groups)))
        axes = fig.subplots(len(groups), columns, squeeze=False)
        for row, group in enumerate(groups):
            for col, ax in enumerate(axes[row]):
                ax.axis("off")
                if col < len(group["members"]):
                    i = group["members"][col]
                    ax.imshow(figures.displayable(image(i)), cmap="gray")
                    name = printable(inventory.names[i], 60).rsplit("/", 1)[-1]
                    ax.set_title(f"{group['kind']} [{inventory.splits[i]}]\n{name}", fontsize=8)
        fig.tight_layout()
        made["duplicates"] = fig
    issues = report_.issues[: 2 * show]
    if issues:
        columns = min(4, len(issues))
        rows = (len(issues) + columns - 1) // columns
        fig = Figure(figsize=(3 * columns, 3.2 * rows))
        axes = fig.subplots(rows, columns, squeeze=False).flatten()
        for ax in axes:
            ax.axis("off")
        for ax, (i, suggested, p) in zip(axes, issues, strict=False):
            ax.imshow(figures.displayable(image(i)), cmap="gray")
            name = printable(inventory.names[i], 60).rsplit("/", 1)[-1]
            given = class_names[int(inventory.labels[i])]
            ax.set_title(f"{name}\nfiled {given}, looks {class_names[suggested]} ({p:.2f})", fontsize=8)
        fig.tight_layout()
        made["label_issues"] = fig
    return made


def parse_fail_on(fail_on: str) -> list[str]:
    chosen = [name.strip() for name in fail_on.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in FINDINGS]
    if unknown:
        raise SettingError(f"--fail_on {fail_on!r} names {', '.join(unknown)}: choose from {', '.join(FINDINGS)}")
    return chosen


def check_data(
    trainer: Trainer,
    model: LightningModule,
    datamodule: object,
    near: float = 0.995,
    near_features: float = 0.95,
    folds: int = 5,
    fail_on: str = "",
    show: int = 8,
) -> dict:
    """Run every check on ``datamodule`` and write the report; the report's content is returned."""
    chosen = parse_fail_on(fail_on)
    if not 0 < near <= 1:
        raise SettingError(f"--near must be in (0, 1], got {near}: pass e.g. --near 0.995")
    if not 0 < near_features <= 1:
        raise SettingError(f"--near_features must be in (0, 1], got {near_features}: pass e.g. --near_features 0.95")
    if folds < 2:
        raise SettingError(f"--folds must be at least 2, got {folds}")
    if not isinstance(datamodule, Checkable):
        raise SettingError(f"check cannot list the items of {type(datamodule).__name__}: it offers no inventory()")
    start = time.perf_counter()
    datamodule.prepare_data()  # what a Trainer's loop does first: fetch or unpack the data
    if hasattr(datamodule, "follow_model"):
        datamodule.follow_model(model)
    inventory: Inventory = datamodule.inventory()
    class_names = list(datamodule.class_names)
    notice(f"check: reading {len(inventory.names)} items")
    scanned = scan(inventory, getattr(datamodule, "num_workers", 0))
    x, probe = probe_features(trainer, model, datamodule, inventory, scanned)
    by_features = "features" in probe
    # a backbone without pretrained weights maps every picture close to every other: its features say no sameness
    pretrained = by_features and model.hparams.get("weights", "none") not in (None, "none")
    groups = duplicate_groups(scanned, near, x if pretrained else None, near_features)
    readable = np.array([d is not None for d in scanned.digests])
    x = x.numpy()
    labels = inventory.labels.numpy()
    positions = np.flatnonzero(readable)
    found = label_issues(
        x[positions] if len(x) == len(labels) else x,
        labels[positions],
        "features" in probe,
        folds,
        getattr(datamodule, "seed", 42),
    )
    issues = [(int(positions[i]), s, p) for i, s, p in found]
    made = report(inventory, class_names, scanned, groups, issues, probe, time.perf_counter() - start)
    if trainer.global_rank != 0:
        return made.content
    folder = run_dir(trainer) or location(trainer.default_root_dir)
    replace_file(folder / "check.json", lambda h: h.write(json.dumps(made.content, indent=1).encode()))
    logger = tensorboard(trainer)
    for name, fig in pictures(made, inventory, class_names, show).items():
        if logger is not None:
            logger.experiment.add_figure(f"check/{name}", fig, close=False)
        figures.save(fig, folder / f"{name}.png")
    print("\n".join(summary_lines(made.content, str(folder), show)), flush=True)
    failed = [f"{len(made.content[name])} {name.replace('_', ' ')}" for name in chosen if made.content[name]]
    if failed:
        raise CheckFailed(f"check found {', '.join(failed)} (--fail_on {fail_on}): see {folder}/check.json")
    return made.content
