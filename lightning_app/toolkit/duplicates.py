"""Duplicates in a data set's inventory: one read of every item (a digest of its pixels, a grey thumbnail, its size),
exact copies by digest, near ones by the thumbnails' correlation (or a pretrained backbone's features), in groups."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - torch's own alias
from torch.utils.data import DataLoader, Dataset

from datamodules.base import Inventory
from datamodules.errors import DataError
from lightning_app.step_progress import track

THUMB = 32  # the side of the grey thumbnails compared for near duplicates
PCA_WIDTH = 48  # the thumbnails' principal components that find candidate pairs (each then checked in full)
NEIGHBOURS = 8  # candidates per item


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
