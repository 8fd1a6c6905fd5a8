"""GraphMAE's one-layer GAT decoder, computed in the order that is cheap for wide outputs.

A GAT layer computes ``out_i = || _k sum_j a^k_ij W_k h_j + b`` with ``a^k`` from the scores
``att_src_k . W_k h_j + att_dst_k . W_k h_i``. Both are linear in ``h``, so the same layer equals
``out_i = || _k W_k (sum_j a^k_ij h_j) + b`` with scores ``(W_k^T att_src_k) . h_j``: messages are passed in the
(narrow) hidden width instead of the (wide) feature width, and ``W`` is applied only to the rows whose
reconstruction is needed (GraphMAE's loss reads the masked nodes only). For Cora (512 -> 1433) this avoids
message passing 1433-wide vectors and half of the output matmul. The parameters are those of a PyG
``GATConv`` (same initialisation and state dict), and the result equals ``GATConv(h, edge_index)[rows]``
(tested in ``tests/plugins/graph/test_graphmae.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor, nn
from torch_geometric.nn import GATConv
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from omnissl_graph.encoders import graphmae_gat_init


class GATDecoder(nn.Module):
    """A PyG ``GATConv`` (concatenated heads, self-loops) evaluated as in the module docstring.

    Shapes:
        ``h``: ``(N, D)``, ``edge_index``: ``(2, E)``, ``rows``: ``(M,)`` or ``None`` -> ``(M or N, heads * C)``.
    """

    def __init__(self, in_dim: int, out_per_head: int, heads: int, attn_drop: float, negative_slope: float = 0.2, init: str = "graphmae"):
        super().__init__()
        self.conv = GATConv(in_dim, out_per_head, heads=heads, concat=True, dropout=attn_drop, negative_slope=negative_slope)
        if init == "graphmae":  # the official GATConv's xavier_normal_(gain=calculate_gain('relu')), as the encoder
            graphmae_gat_init(self.conv)
        self.heads, self.out_per_head, self.attn_drop, self.negative_slope = heads, out_per_head, attn_drop, negative_slope

    def forward(self, h: Tensor, edge_index: Tensor, rows: Tensor | None = None) -> Tensor:
        conv = self.conv
        weight = rearrange(conv.lin.weight, "(k c) d -> k c d", k=self.heads)
        v_src = einsum(conv.att_src[0], weight, "k c, k c d -> k d")
        v_dst = einsum(conv.att_dst[0], weight, "k c, k c d -> k d")
        n = h.shape[0]
        edge_index, _ = remove_self_loops(edge_index)
        edge_index, _ = add_self_loops(edge_index, num_nodes=n)
        src, dst = edge_index
        score = (h @ v_src.T)[src] + (h @ v_dst.T)[dst]  # (E, k)
        alpha = softmax(F.leaky_relu(score, self.negative_slope), dst, num_nodes=n)
        alpha = F.dropout(alpha, p=self.attn_drop, training=self.training)
        if rows is not None:
            # only edges into the requested rows are needed; relabel their targets to 0..M-1
            lookup = torch.full((n,), -1, dtype=torch.long, device=h.device)
            lookup[rows] = torch.arange(rows.numel(), device=h.device)
            keep = lookup[dst] >= 0
            src, alpha, dst, n = src[keep], alpha[keep], lookup[dst[keep]], rows.numel()
        messages = rearrange(alpha, "e k -> e k 1") * rearrange(h[src], "e d -> e 1 d")
        agg = torch.zeros(n, self.heads, h.shape[1], dtype=messages.dtype, device=h.device).index_add_(0, dst, messages)
        out = einsum(agg, weight, "n k d, k c d -> n k c")
        return rearrange(out, "n k c -> n (k c)") + conv.bias
