"""Fashion-MNIST clothing images."""

from torchvision.datasets import FashionMNIST

from datamodules.idx import IdxDataModule


class FashionMNISTDataModule(IdxDataModule):
    """Fashion-MNIST: 60,000 training and 10,000 test articles of clothing, 28x28 grey."""

    dataset_class = FashionMNIST
    class_names = list(FashionMNIST.classes)
