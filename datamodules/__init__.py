"""LightningDataModules for the lesson's data sets."""

from datamodules.errors import DataError
from datamodules.fashion_mnist import FashionMNISTDataModule
from datamodules.idx import IdxDataModule
from datamodules.mnist import MNISTDataModule

DATAMODULES = ("MNISTDataModule", "FashionMNISTDataModule")

__all__ = ["DATAMODULES", "DataError", "FashionMNISTDataModule", "IdxDataModule", "MNISTDataModule"]
