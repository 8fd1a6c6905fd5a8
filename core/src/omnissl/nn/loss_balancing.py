"""Balancing the losses of several tasks whose scales differ by orders of magnitude (a cross-domain run).

Two methods, chosen with ``engine.loss_balancing``:

- ``running_mean``: each task's loss is divided by an exponential running mean of its own detached value,
  ``L_t / m_t`` with ``m_t <- beta * m_t + (1 - beta) * L_t`` (``beta = 0.99``; the first value seeds the mean).
  Every task then contributes about its ``weight`` to the gradient whatever its units, the loss-ratio
  normalisation used in multi-task practice (e.g. GradNorm's initial-loss ratios, Chen et al. 2018, with a
  running instead of the initial loss). The mean is a buffer: checkpointed, and broadcast from rank 0 by DDP.
- ``uncertainty``: Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
  Geometry and Semantics", CVPR 2018, eq. 7 in its common form ``exp(-s_t) * L_t + s_t`` with a learned
  ``s_t = log sigma_t^2`` per task (initialised to 0, trained with the rest). The fixed point is
  ``exp(s_t) = L_t``, so it too divides each loss by its own scale, with a learned instead of a running mean.
  Self-supervised losses can be negative (NT-Xent is not; VICReg's is not; some cosine losses are): the
  optimum of ``exp(-s) L + s`` needs ``L > 0``, so use ``running_mean`` for tasks whose loss can go below 0.

Nothing here reads a tensor on the host: the update is a device ``torch.where`` on the running mean.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LossBalancer(nn.Module):
    """``forward(task, loss) -> balanced loss`` for the tasks named at construction.

    Shapes:
        ``loss`` ``()`` -> ``()``.
    """

    def __init__(self, method: str, tasks: list[str], beta: float = 0.99):
        super().__init__()
        if method not in ("running_mean", "uncertainty"):
            raise ValueError(f"unknown loss balancing {method!r}; valid choices: none, running_mean, uncertainty")
        self.method, self.beta = method, beta
        self.index = {name: i for i, name in enumerate(tasks)}
        if method == "uncertainty":
            self.log_var = nn.Parameter(torch.zeros(len(tasks)))
        else:
            self.register_buffer("running", torch.zeros(len(tasks)))
            self.register_buffer("seen", torch.zeros(len(tasks), dtype=torch.bool))

    def forward(self, task: str, loss: Tensor) -> Tensor:
        i = self.index[task]
        if self.method == "uncertainty":
            s = self.log_var[i]
            return torch.exp(-s) * loss + s
        value = loss.detach().float()
        mean = torch.where(self.seen[i], self.beta * self.running[i] + (1 - self.beta) * value, value)
        with torch.no_grad():
            self.running[i] = mean
            self.seen[i] = True
        return loss / mean.abs().clamp_min(1e-8).to(loss.dtype)  # |mean|: a negative loss keeps its sign

    def scales(self) -> dict[str, Tensor]:
        """Per-task divisor of the raw loss, for logging (device tensors)."""
        values = torch.exp(self.log_var.detach()) if self.method == "uncertainty" else self.running
        return {name: values[i] for name, i in self.index.items()}
