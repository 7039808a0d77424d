"""MNIST handwritten digits."""

from torchvision.datasets import MNIST

from datamodules.idx import IdxDataModule


class MNISTDataModule(IdxDataModule):
    """MNIST: 60,000 training and 10,000 test digits, 28x28 grey."""

    dataset_class = MNIST
    class_names = [str(d) for d in range(10)]
