"""LightningDataModules for the lesson's data sets."""

from datamodules.errors import DataError
from datamodules.fashion_mnist import FashionMNISTDataModule
from datamodules.idx import IdxDataModule
from datamodules.image_folder import CatDogDataModule
from datamodules.mnist import MNISTDataModule

__all__ = ["CatDogDataModule", "DataError", "FashionMNISTDataModule", "IdxDataModule", "MNISTDataModule"]
