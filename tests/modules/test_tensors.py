"""The lesson's first part: a sigmoid neuron, a two-layer forward pass and the NumPy bridge."""

import numpy as np
import pytest
import torch

from modules.tensors import activation, single_neuron_output, two_layer_output


def test_activation_is_the_sigmoid():
    x = torch.linspace(-5, 5, 11)
    assert torch.allclose(activation(x), torch.sigmoid(x))


def test_single_neuron_gives_the_notebook_output():
    assert single_neuron_output(seed=7).item() == pytest.approx(0.1595, abs=5e-5)


def test_two_layer_network_gives_the_notebook_output():
    assert two_layer_output(seed=7).item() == pytest.approx(0.3171, abs=5e-5)


def test_from_numpy_shares_memory_both_ways():
    a = np.random.rand(4, 3)
    b = torch.from_numpy(a)
    assert np.array_equal(b.numpy(), a)
    b.mul_(2)  # in place on the tensor changes the array
    assert np.array_equal(a, b.numpy())
    a[0, 0] = -1.0  # and the other way round
    assert b[0, 0].item() == -1.0
