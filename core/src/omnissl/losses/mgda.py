"""MGDA min-norm task weighting: the convex combination of task gradients with the smallest norm.

Reference: Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
section 3.2 (algorithm 2) and their code github.com/isl-org/MultiObjectiveOptimization
(``min_norm_solvers.py``): for two tasks the closed form
``alpha = clamp((g2 - g1) . g2 / ||g1 - g2||^2, 0, 1)``; for more, Frank-Wolfe on the Gram matrix with the
two-point closed form as exact line search. ParetoGNN (Ju et al., ICLR 2023) uses it across graph pretext
tasks. Everything runs on tensors with a fixed number of iterations, so there is no host sync.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _line_search(v1v1: Tensor, v1v2: Tensor, v2v2: Tensor) -> Tensor:
    """``argmin_g ||g v1 + (1 - g) v2||^2`` over ``g in [0, 1]`` from the three inner products."""
    denom = (v1v1 + v2v2 - 2 * v1v2).clamp_min(1e-20)
    return ((v2v2 - v1v2) / denom).clamp(0.0, 1.0)


def min_norm_weights(gram: Tensor, iterations: int = 50) -> Tensor:
    """Weights ``alpha`` on the simplex minimising ``alpha^T G alpha`` for the Gram matrix ``G`` of task gradients.

    Shapes:
        ``gram``: ``(T, T)`` -> ``(T,)``, non-negative, summing to 1 (detached).
    """
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"min_norm_weights needs a square (T, T) Gram matrix, got {tuple(gram.shape)}")
    gram = gram.detach().double()
    tasks = gram.shape[0]
    if tasks == 1:
        return torch.ones(1, dtype=torch.float32, device=gram.device)
    if tasks == 2:
        g = _line_search(gram[0, 0], gram[0, 1], gram[1, 1])
        return torch.stack([g, 1 - g]).float()
    alpha = torch.full((tasks,), 1.0 / tasks, dtype=gram.dtype, device=gram.device)
    eye = torch.eye(tasks, dtype=gram.dtype, device=gram.device)
    for _ in range(iterations):
        grad = gram @ alpha
        target = eye[grad.argmin()]  # Frank-Wolfe vertex: the task gradient most opposed to the current one
        v1v1 = alpha @ grad
        v1v2 = target @ grad
        v2v2 = target @ gram @ target
        g = _line_search(v1v1, v1v2, v2v2)
        alpha = g * alpha + (1 - g) * target
    return alpha.float()
