"""LightningModules for the lesson's networks."""

from modules.classification import ClassificationModule
from modules.classifier import Classifier
from modules.errors import ModelError
from modules.mlp import MLP

MODELS = ("MLP", "Classifier")

__all__ = ["MODELS", "MLP", "ClassificationModule", "Classifier", "ModelError"]
