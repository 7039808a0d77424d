"""Likely label errors: cleanlab's ``find_label_issues`` on out-of-fold class probabilities from a scikit-learn probe
(a logistic regression on a frozen backbone's features, else nearest neighbours on thumbnails)."""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer

from datamodules.base import Inventory
from lightning_app.contracts import FeatureCacheable, FeatureExtractor, offers
from lightning_app.errors import require
from lightning_app.toolkit.duplicates import Scan, correlations


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
