"""DirectAdam: Adam.step's update bit for bit, taken directly only where nothing is skipped by it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_app.engine.direct_optimizer import DirectAdam
from lightning_app.engine.fast_path import FastPath
from modules import MLP
from tests.helpers.training import fit_tiny_mnist


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3), nn.LogSoftmax(dim=1))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int, direct: bool) -> list[DirectAdam]:
    """``steps`` steps on fixed random batches, the rate changed at every step as a schedule would."""
    generator = torch.Generator().manual_seed(1)
    made = []
    for step in range(steps):
        x, y = torch.randn(16, 12, generator=generator), torch.randint(0, 3, (16,), generator=generator)
        stepper = DirectAdam(optimizer) if direct else None
        made.append(stepper)
        if stepper:
            stepper.zero_grad()
        else:
            optimizer.zero_grad(set_to_none=True)
        nn.functional.nll_loss(model(x), y).backward()
        stepper.step() if stepper else optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = 0.01 / (step + 2)
    return made


@pytest.mark.parametrize(
    "settings",
    [
        {"fused": True},
        {"foreach": True},
        {"foreach": False},
        {"amsgrad": True, "weight_decay": 0.01},
        {"maximize": True},
    ],
)
def test_the_direct_update_is_adam_steps_bit_for_bit(settings):
    plain_model, direct_model = net(), net()
    plain = torch.optim.Adam(plain_model.parameters(), lr=0.01, **settings)
    direct = torch.optim.Adam(direct_model.parameters(), lr=0.01, **settings)
    train(plain_model, plain, 6, direct=False)
    made = train(direct_model, direct, 6, direct=True)
    assert made[0].groups is None and all(m.groups is not None for m in made[1:])  # first step: no state yet
    for a, b in zip(plain_model.parameters(), direct_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(plain_model.parameters(), direct_model.parameters(), strict=True):
        for key, value in plain.state[p].items():
            torch.testing.assert_close(direct.state[q][key], value, rtol=0, atol=0)


def test_anything_it_would_skip_goes_through_optimizer_step():
    model = net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, 1, direct=False)
    assert DirectAdam(optimizer).groups is not None
    assert DirectAdam(torch.optim.SGD(model.parameters(), lr=0.1)).groups is None  # another optimizer
    extra = nn.Parameter(torch.zeros(2))
    optimizer.add_param_group({"params": [extra]})  # a parameter without state yet
    assert DirectAdam(optimizer).groups is None


def test_a_parameter_without_a_gradient_takes_adams_own_step():
    """Adam.step skips parameters without gradients; the direct update leaves such a step to it."""
    plain_model, direct_model = net(), net()
    plain = torch.optim.Adam(plain_model.parameters(), lr=0.01)
    direct = torch.optim.Adam(direct_model.parameters(), lr=0.01)
    train(plain_model, plain, 2, direct=False)
    train(direct_model, direct, 2, direct=True)
    x = torch.randn(4, 12)
    for model, optimizer, use in ((plain_model, plain, False), (direct_model, direct, True)):
        stepper = DirectAdam(optimizer)
        stepper.zero_grad()
        model[2].bias.requires_grad_(False)
        nn.functional.nll_loss(model(x), torch.zeros(4, dtype=torch.long)).backward()
        stepper.step() if use else optimizer.step()
    for a, b in zip(plain_model.parameters(), direct_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_fast_path_updates_adam_directly_only_where_no_users_code_ran(idx_root, monkeypatch):
    """As the app's own program with the app's classes: only the first loaded batch of a run (no optimizer state
    yet) goes through Adam.step. In a script (this test, as it is) every step does, hooks included."""
    from lightning_app import provenance

    calls = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    _, trainer = fit_tiny_mnist(idx_root, "cpu", 2, MLP, [FastPath(4)])
    assert trainer.global_step == len(calls) == 2 * 9  # a script: Optimizer.step, its hooks run
    calls.clear()
    monkeypatch.setattr(provenance, "started_as_the_program", lambda: True)
    _, trainer = fit_tiny_mnist(idx_root, "cpu", 2, MLP, [FastPath(4)])
    assert len(calls) == 2 * 9  # RecordLosses (tests.helpers) is a user's class: Optimizer.step still
    monkeypatch.setattr(provenance, "known", lambda obj: True)
    calls.clear()
    _, trainer = fit_tiny_mnist(idx_root, "cpu", 2, MLP, [FastPath(4)])
    assert trainer.global_step == 2 * 9 and len(calls) == 4  # the 4 steps of the first loaded batch


def test_which_objects_are_the_apps_and_its_libraries(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.strategies import SingleDeviceStrategy

    from lightning_app import provenance
    from tests.helpers.callbacks import RecordLosses

    assert provenance.known(TensorBoardLogger(tmp_path)) and provenance.known(SingleDeviceStrategy("cpu"))
    assert provenance.known(MLP()) and not provenance.known(RecordLosses())  # tests.helpers: a user's code
