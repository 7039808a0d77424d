"""Adam's own update for the fast path's many small steps, without ``Optimizer.step``'s per-call bookkeeping.

``torch.optim.Adam.step`` wraps one fused kernel in Python that costs about as much as the kernel: the profiler
and grad-mode wrappers, a graph-capture check, a pass over every parameter's state and a grouping by device.
The same update through torch's public functional API, ``torch.optim.adam.adam``, skips them (measured in
docs/speed.md, "The engine's choices").

:class:`DirectAdam` makes that call with the optimizer's own state tensors and each group's current settings
(the learning rate the schedule sets included), so the update is ``Adam.step``'s bit for bit; the fast path's
tests compare the weights with Lightning's per-step path. Anything else goes through ``optimizer.step()``:
another optimizer class, a parameter without a gradient or without state yet (the first step), complex
parameters, ``differentiable`` or a gradient scaler's attributes.

``Optimizer.step`` also runs the optimizer step hooks (``register_step_pre_hook``, global ones too), which torch
offers no public way to list. So the fast path updates directly only where no code but the app's and its
libraries' ran (``lightning_app/provenance.py``: the app's own program, every object of the run from known
packages), none of which registers such hooks; a script, a notebook or a user's class gets ``optimizer.step()``.
"""

from __future__ import annotations

import inspect

import torch
from torch.optim import Adam
from torch.optim import adam as adam_module

# What Adam.step passes from each param group to torch.optim.adam.adam (torch 2.14), besides the tensors.
FLAGS = ("foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay")
SETTINGS = ("amsgrad", "lr", "weight_decay", "eps", "maximize")


def _takes_settings() -> bool:
    """Whether this torch's ``adam`` function takes the arguments :meth:`DirectAdam.step` passes."""
    try:
        parameters = inspect.signature(adam_module.adam).parameters
    except (TypeError, ValueError):
        return False
    return all(name in parameters for name in (*FLAGS, *SETTINGS, "beta1", "beta2", "has_complex"))


TAKES_SETTINGS = _takes_settings()


class DirectAdam:
    """``zero_grad()`` and ``step()`` for ``optimizer``, direct where it is a plain ``torch.optim.Adam``.

    Make one per loaded batch (its view of the state is taken when it is made, so a resumed optimizer's loaded
    state is seen), after the optimizer's first step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.groups = self._groups() if self._direct_possible() else None

    def _direct_possible(self) -> bool:
        optimizer = self.optimizer
        return (
            TAKES_SETTINGS
            and type(optimizer) is Adam
            and getattr(optimizer, "grad_scale", None) is None
            and getattr(optimizer, "found_inf", None) is None
            and not any(group["differentiable"] for group in optimizer.param_groups)
            and not any(torch.is_complex(p) for p in self.params)
            and all(len(optimizer.state.get(p, ())) > 0 for p in self.params)
        )

    def _groups(self) -> list[tuple[dict, list[torch.Tensor], list[list[torch.Tensor]]]]:
        """Each param group with its parameters and their state tensors, in ``Adam.step``'s order."""
        state = self.optimizer.state
        groups = []
        for group in self.optimizer.param_groups:
            params = list(group["params"])
            exp_avgs = [state[p]["exp_avg"] for p in params]
            exp_avg_sqs = [state[p]["exp_avg_sq"] for p in params]
            max_exp_avg_sqs = [state[p]["max_exp_avg_sq"] for p in params] if group["amsgrad"] else []
            steps = [state[p]["step"] for p in params]
            groups.append((group, params, [exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps]))
        return groups

    def zero_grad(self) -> None:
        """``optimizer.zero_grad(set_to_none=True)``, without its profiler wrapper."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update: the direct call where possible, else ``optimizer.step()``. (Without gradients, as
        ``Adam.step``: the parameters are updated in place.)"""
        if self.groups is None:
            self.optimizer.step()
            return
        work = []
        for group, params, state in self.groups:
            grads = [p.grad for p in params]
            if any(grad is None for grad in grads):  # Adam.step skips such parameters; leave that to it
                self.optimizer.step()
                return
            work.append((group, params, grads, state))
        for group, params, grads, (exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps) in work:
            beta1, beta2 = group["betas"]
            adam_module.adam(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                max_exp_avg_sqs,
                steps,
                has_complex=False,
                beta1=beta1,
                beta2=beta2,
                grad_scale=None,
                found_inf=None,
                **{name: group[name] for name in FLAGS},
                **{name: group[name] for name in SETTINGS},
            )
