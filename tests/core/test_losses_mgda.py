"""MGDA min-norm weights against brute force over the simplex (Sener & Koltun 2018, eq. 3 / algorithm 2)."""

import itertools

import torch

from omnissl.losses.mgda import min_norm_weights


def _brute_force(gram, steps=200):
    best, best_val = None, float("inf")
    tasks = gram.shape[0]
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    for point in itertools.product(range(steps + 1), repeat=tasks - 1):
        if sum(point) > steps:
            continue
        alpha = torch.tensor([grid[p] for p in point] + [1 - grid[list(point)].sum()], dtype=torch.float64)
        val = float(alpha @ gram @ alpha)
        if val < best_val:
            best, best_val = alpha, val
    return best, best_val


def test_two_tasks_closed_form_is_the_minimum():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        grads = torch.randn(2, 7, generator=g, dtype=torch.float64)
        gram = grads @ grads.T
        alpha = min_norm_weights(gram).double()
        _, best = _brute_force(gram, steps=2000)
        assert abs(float(alpha @ gram @ alpha) - best) < 1e-4 * max(1.0, best)
        assert abs(float(alpha.sum()) - 1) < 1e-6 and (alpha >= 0).all()


def test_two_tasks_known_cases():
    # orthogonal unit gradients: equal weights; one gradient inside the other's half-space: the smaller wins
    assert torch.allclose(min_norm_weights(torch.eye(2)), torch.tensor([0.5, 0.5]))
    g = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert torch.allclose(min_norm_weights(g @ g.T), torch.tensor([1.0, 0.0]))


def test_three_tasks_frank_wolfe_reaches_the_minimum():
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        grads = torch.randn(3, 4, generator=g, dtype=torch.float64)
        gram = grads @ grads.T
        alpha = min_norm_weights(gram, iterations=200).double()
        _, best = _brute_force(gram, steps=150)
        assert float(alpha @ gram @ alpha) <= best + 1e-3 * max(1.0, best)
        assert abs(float(alpha.sum()) - 1) < 1e-6 and (alpha >= -1e-9).all()


def test_many_tasks_frank_wolfe_is_close_and_on_the_simplex():
    g = torch.Generator().manual_seed(2)
    grads = torch.randn(10, 30, generator=g, dtype=torch.float64)
    gram = grads @ grads.T
    alpha = min_norm_weights(gram, iterations=500).double()
    uniform = torch.full((10,), 0.1, dtype=torch.float64)
    assert abs(float(alpha.sum()) - 1) < 1e-6 and (alpha >= -1e-9).all()
    assert float(alpha @ gram @ alpha) < float(uniform @ gram @ uniform)
