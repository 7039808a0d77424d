"""LightningModules for the lesson's networks."""

from modules.classification import ClassificationModule
from modules.classifier import Classifier
from modules.errors import ModelError
from modules.mlp import MLP
from modules.transfer import TransferModel

__all__ = ["MLP", "TransferModel", "ClassificationModule", "Classifier", "ModelError"]
