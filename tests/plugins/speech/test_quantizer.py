"""Gumbel product quantizer: the diversity loss formula and that it spreads code usage (wav2vec 2.0 eq. 4)."""

import torch

from omnissl_speech.quantizers import GumbelProductQuantizer


def test_diversity_loss_extremes():
    q = GumbelProductQuantizer(8, groups=2, entries=16, code_dim=8)
    x = torch.randn(4, 10, 8)
    with torch.no_grad():
        q.to_logits.weight.zero_()
        out = q(x)
    # uniform softmax: perplexity G * V, loss (GV - perplexity) / GV = 0
    assert torch.isclose(out.perplexity, torch.tensor(32.0), atol=1e-3) and abs(float(out.diversity_loss)) < 1e-4
    with torch.no_grad():
        q.to_logits.bias.zero_()
        q.to_logits.bias[0] = 100.0  # group 0 always picks entry 0
        q.to_logits.bias[16] = 100.0  # group 1 always picks entry 0
        out = q(x)
    # collapsed: perplexity G, loss (GV - G) / GV
    assert torch.isclose(out.perplexity, torch.tensor(2.0), atol=1e-3)
    assert torch.isclose(out.diversity_loss, torch.tensor(30.0 / 32.0), atol=1e-4)
    assert (out.codes == 0).all()


def test_padding_does_not_count_towards_usage():
    q = GumbelProductQuantizer(8, groups=2, entries=16, code_dim=8).eval()
    x = torch.randn(2, 10, 8)
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[1, 5:] = False
    y = x.clone()
    y[1, 5:] = 50.0
    a, b = q(x, valid), q(y, valid)
    assert torch.isclose(a.diversity_loss, b.diversity_loss)


def test_diversity_loss_increases_code_usage():
    torch.manual_seed(0)
    q = GumbelProductQuantizer(16, groups=2, entries=32, code_dim=16)
    with torch.no_grad():
        q.to_logits.weight.mul_(0.05)  # start nearly collapsed onto a few codes
        q.to_logits.bias[:32] = torch.linspace(8, 0, 32)
        q.to_logits.bias[32:] = torch.linspace(8, 0, 32)
    x = torch.randn(4, 50, 16)
    opt = torch.optim.Adam(q.parameters(), lr=0.05)
    before = q(x)
    used_before = sum(len(torch.unique(before.codes[..., g])) for g in range(2))
    for _ in range(100):
        loss = q(x).diversity_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = q(x)
    used_after = sum(len(torch.unique(after.codes[..., g])) for g in range(2))
    assert before.perplexity < 25 and after.perplexity > 48  # of at most G * V = 64
    assert used_after > 2 * used_before and used_after >= 40


def test_straight_through_vectors_come_from_the_codebook():
    q = GumbelProductQuantizer(8, groups=2, entries=4, code_dim=6).eval()
    out = q(torch.randn(1, 3, 8))
    for g in range(2):
        expected = q.codebook[g][out.codes[0, :, g]]
        torch.testing.assert_close(out.vectors[0, :, 3 * g : 3 * g + 3], expected)
