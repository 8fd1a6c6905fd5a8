"""MGDA min-norm task weighting: the convex combination of task gradients with the smallest norm.

Reference: Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
section 3.2 (algorithm 2) and their code github.com/isl-org/MultiObjectiveOptimization
(``min_norm_solvers.py``): for two tasks the closed form
``alpha = clamp((g2 - g1) . g2 / ||g1 - g2||^2, 0, 1)``; for more, Frank-Wolfe on the Gram matrix with the
two-point closed form as exact line search. ParetoGNN (Ju et al., ICLR 2023) uses it across graph pretext
tasks. For up to :data:`EXACT_MAX_TASKS` tasks we solve the small quadratic program exactly instead (every
face of the simplex is an equality-constrained QP solved in one batched linear solve; the best feasible one
wins), because Frank-Wolfe converges slowly when the optimum lies on a face. Everything runs on tensors
with a fixed amount of work, so there is no host sync.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _line_search(v1v1: Tensor, v1v2: Tensor, v2v2: Tensor) -> Tensor:
    """``argmin_g ||g v1 + (1 - g) v2||^2`` over ``g in [0, 1]`` from the three inner products."""
    denom = (v1v1 + v2v2 - 2 * v1v2).clamp_min(1e-20)
    return ((v2v2 - v1v2) / denom).clamp(0.0, 1.0)


EXACT_MAX_TASKS = 8


def _exact_min_norm(gram: Tensor) -> Tensor:
    """Solve ``min alpha^T G alpha`` on the simplex by enumerating faces (``2^T - 1`` small KKT systems)."""
    tasks = gram.shape[0]
    codes = torch.arange(1, 2**tasks, device=gram.device)
    subsets = ((codes.unsqueeze(1) >> torch.arange(tasks, device=gram.device)) & 1).bool()  # (F, T), built on the device
    faces = subsets.shape[0]
    kkt = torch.zeros(faces, tasks + 1, tasks + 1, dtype=gram.dtype, device=gram.device)
    inside = subsets.to(gram.dtype)
    pair = inside.unsqueeze(2) * inside.unsqueeze(1)
    # rows of tasks outside the face become alpha_t = 0; inside rows are G_S alpha + lambda = 0
    kkt[:, :tasks, :tasks] = gram * pair + torch.diag_embed(1 - inside)
    kkt[:, :tasks, tasks] = inside
    kkt[:, tasks, :tasks] = inside
    rhs = torch.zeros(faces, tasks + 1, dtype=gram.dtype, device=gram.device)
    rhs[:, tasks] = 1.0
    solution = (torch.linalg.pinv(kkt) @ rhs.unsqueeze(2)).squeeze(2)[:, :tasks]  # (F, T)
    feasible = (solution >= -1e-9).all(dim=1) & ((solution.sum(dim=1) - 1).abs() < 1e-6)
    value = torch.einsum("ft,ts,fs->f", solution, gram, solution)
    value = torch.where(feasible, value, torch.full_like(value, float("inf")))
    best = solution[value.argmin()].clamp_min(0)
    return best / best.sum()


def min_norm_weights(gram: Tensor, iterations: int = 50) -> Tensor:
    """Weights ``alpha`` on the simplex minimising ``alpha^T G alpha`` for the Gram matrix ``G`` of task gradients.

    Two tasks: closed form. Up to eight: exact face enumeration. More: ``iterations`` Frank-Wolfe steps.

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
    if tasks <= EXACT_MAX_TASKS:
        return _exact_min_norm(gram).float()
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
