"""Small helpers shared by the tests."""

from datamodules import CatDogDataModule


def photo_module(root, **kwargs) -> CatDogDataModule:
    """A CatDogDataModule sized for tiny test photos: 32x32 crops, batches of 4, no worker processes."""
    settings = {"batch_size": 4, "num_workers": 0, "image_size": 32, **kwargs}
    return CatDogDataModule(data_dir=str(root), **settings)
