"""LightningDataModules for the lesson's data sets."""

from datamodules.errors import DataError
from datamodules.fashion_mnist import FashionMNISTDataModule
from datamodules.idx import IdxDataModule
from datamodules.image_folder import CatDogDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.name_clash import warn_on_name_clash
from datamodules.streaming import StreamingImageDataModule

warn_on_name_clash()

__all__ = [
    "CatDogDataModule",
    "DataError",
    "FashionMNISTDataModule",
    "IdxDataModule",
    "MNISTDataModule",
    "StreamingImageDataModule",
]
