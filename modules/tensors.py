"""The lesson's first part: tensors, a sigmoid neuron and a two-layer forward pass by hand."""

from __future__ import annotations

import torch


def activation(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid activation, written out as in the lesson: 1 / (1 + exp(-x))."""
    return 1 / (1 + torch.exp(-x))


def single_neuron_output(seed: int = 7) -> torch.Tensor:
    """One neuron: five random features, random weights and bias, through the sigmoid.

    With the lesson's seed 7 this prints tensor([[0.1595]]).
    """
    torch.manual_seed(seed)
    features = torch.randn((1, 5))
    weights = torch.randn_like(features)
    bias = torch.randn((1, 1))
    return activation(torch.sum(features * weights) + bias)


def two_layer_output(seed: int = 7, n_hidden: int = 2, n_output: int = 1) -> torch.Tensor:
    """A 3-input, 2-hidden, 1-output network with matrix multiplications.

    With the lesson's seed 7 this prints tensor([[0.3171]]).
    """
    torch.manual_seed(seed)
    features = torch.randn((1, 3))
    n_input = features.shape[1]
    w1 = torch.randn(n_input, n_hidden)
    w2 = torch.randn(n_hidden, n_output)
    b1 = torch.randn((1, n_hidden))
    b2 = torch.randn((1, n_output))
    hidden = activation(torch.mm(features, w1) + b1)
    return activation(torch.mm(hidden, w2) + b2)
