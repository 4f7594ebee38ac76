"""Small helpers of an update: the gradient norm (:func:`grad_norm`) and a network
frozen for a block (:func:`frozen`, the critic while the generator learns)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["frozen", "grad_norm"]


def grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """The L2 norm of all gradients together (a 0-d tensor; inf or nan if any gradient is)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else "cpu")
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if total_norm is not None:
        return total_norm(grads, 2.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Switch off ``requires_grad`` of a module's parameters inside the block (the critic while
    the generator learns: gradients still flow through it to its input, none are stored)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)
