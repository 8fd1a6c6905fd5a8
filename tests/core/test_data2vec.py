"""core.data2vec (data2vec 2.0): targets as fairseq's make_targets builds them, masks, loss, EMA, several masks."""

import math

import pytest
import torch
import torch.nn.functional as F

from omnissl.interfaces import Progress, Views
from omnissl.nn.token_encoder import TokenTransformer, TokenTransformerConfig
from omnissl.objectives.data2vec import Data2VecConfig, Data2VecObjective, instance_norm, repeat_batch


def _encoder(depth=3, dim=16):
    torch.manual_seed(0)
    return TokenTransformer(6, TokenTransformerConfig(dim=dim, depth=depth, heads=2))


@pytest.mark.parametrize("layer_norm", ["instance", "layer"])
def test_targets_are_in_average_ln_of_the_teachers_top_k_ffn_outputs(layer_norm):
    """fairseq data2vec2.make_targets with instance_norm_target_layer (or layer_norm_target_layer) and
    layer_norm_targets: IN (or LN) each of the top-K layers' FFN outputs, average, LN; computed here by hand
    from the teacher's blocks."""
    enc = _encoder(depth=3)
    obj = Data2VecObjective(enc, Data2VecConfig(top_k=2, target_layer_norm=layer_norm), seed=0)
    x = torch.randn(4, 10, 6)
    target, padding = obj.targets(x)
    assert padding is None and target.shape == (4, 10, 16)
    teacher = obj.teacher.module
    h = teacher.stem(x) + __import__("omnissl.nn.positions", fromlist=["sincos_positions"]).sincos_positions(10, 16)
    ffn = []
    for block in teacher.trunk.blocks:
        h = h + block.attn(block.norm1(h), None)
        f = block.mlp(block.norm2(h))
        ffn.append(f)
        h = h + f
    if layer_norm == "instance":
        ref = sum(F.instance_norm(f.transpose(1, 2)).transpose(1, 2) for f in ffn[-2:]) / 2
    else:
        ref = sum(F.layer_norm(f, f.shape[-1:]) for f in ffn[-2:]) / 2
    ref = F.layer_norm(ref, ref.shape[-1:])
    torch.testing.assert_close(target, ref, rtol=1e-4, atol=1e-5)


def test_instance_norm_ignores_padding():
    x = torch.randn(2, 7, 3)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    out = instance_norm(x, pad)
    torch.testing.assert_close(out[1, :4], instance_norm(x[1:, :4], None)[0], rtol=1e-4, atol=1e-5)
    assert (out[1, 4:] == 0).all()


def test_loss_is_scaled_squared_error_on_masked_tokens_only():
    enc = _encoder(depth=2)
    obj = Data2VecObjective(enc, Data2VecConfig(num_masks=3, mask_ratio=0.6), seed=0)
    x = torch.randn(5, 10, 6)
    captured = {}
    decoder_forward = obj.decoder.forward

    def spy(full):
        captured["pred"] = pred = decoder_forward(full)
        return pred

    obj.decoder.forward = spy
    out = obj(enc, Views(inputs=[x], original=x))
    pred = captured["pred"]
    assert pred.shape == (15, 10, 16)  # three masks per sample, mask-major
    target, _ = obj.targets(x)
    target = target.repeat(3, 1, 1)
    # the masked tokens are the ones the mask token filled: recover them from the student's keep (4 visible of 10)
    gen = torch.Generator().manual_seed((0 * 1_000_003 + 0) * 1_009 + 0)
    keep = torch.rand(15, 10, generator=gen).argsort(dim=1)[:, :4]
    masked = torch.ones(15, 10, dtype=torch.bool).scatter(1, keep, False)
    expected = ((pred - target) ** 2).sum(-1)[masked].mean() / math.sqrt(16)
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)
    assert masked.sum() == 15 * 6


def test_gradients_reach_student_and_decoder_not_teacher():
    enc = _encoder()
    obj = Data2VecObjective(enc, Data2VecConfig(), seed=0)
    x = torch.randn(4, 10, 6)
    obj(enc, Views(inputs=[x], original=x)).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    assert obj.mask_token.grad is not None and all(p.grad is not None for p in obj.decoder.parameters())
    assert all(not p.requires_grad for p in obj.teacher.parameters())


def test_teacher_follows_the_student_by_ema():
    enc = _encoder()
    obj = Data2VecObjective(enc, Data2VecConfig(ema_decay=0.9, ema_end_decay=0.9), seed=0)
    before = [p.clone() for p in obj.teacher.parameters()]
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    obj.after_step(Progress(step=1, total_steps=10))
    for b, t, s in zip(before, obj.teacher.parameters(), enc.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)


def test_several_masks_equal_one_encoding_per_mask():
    """Repeating the batch per mask is only a faster way of encoding each mask separately."""
    enc = _encoder()
    x = torch.randn(3, 10, 6)
    rep = repeat_batch(x, 3, 4)
    assert rep.shape == (12, 10, 6) and torch.equal(rep[3:6], x)
    assert repeat_batch({"a": x, "n": torch.zeros(2)}, 3, 2) is None  # a tensor not led by the batch: encode per mask
    keep = torch.stack([torch.randperm(10)[:4].sort().values for _ in range(12)])
    together = enc(rep, keep=keep).tokens
    apart = torch.cat([enc(x, keep=k).tokens for k in keep.chunk(4)])
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-6)


def test_training_lowers_the_loss_on_predictable_tokens():
    from omnissl.builtin import toy_token_source

    data = toy_token_source().data
    enc = _encoder(depth=2)
    obj = Data2VecObjective(enc, Data2VecConfig(num_masks=2, mask_ratio=0.5, ema_decay=0.99, ema_end_decay=0.99), seed=0)
    opt = torch.optim.AdamW([*enc.parameters(), *obj.decoder.parameters(), obj.mask_token], lr=3e-3)
    losses = []
    for step in range(60):
        batch = data[(torch.arange(32) + step * 32) % len(data)]
        out = obj(enc, Views(inputs=[batch], original=batch))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        obj.after_step(Progress(step=step + 1, total_steps=60))
        losses.append(out.loss.item())
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert out.logs["target_std"] > 0.1  # targets did not collapse to a constant


def test_bad_encoder_is_a_clear_error():
    with pytest.raises(ValueError, match="TransformerTrunk"):
        Data2VecObjective(torch.nn.Linear(3, 3), Data2VecConfig(), seed=0)


def test_a_deep_copy_reads_its_own_teachers_blocks():
    """The block hooks follow ``copy.deepcopy`` (the engine counts FLOPs on a copy of each task): a hook that
    closed over the original objective left the copy's captured layers empty (ZeroDivisionError in targets)."""
    import copy

    enc = _encoder(depth=2)
    obj = Data2VecObjective(enc, Data2VecConfig(top_k=2), seed=0)
    x = torch.randn(3, 10, 6)
    clone = copy.deepcopy(obj)
    torch.testing.assert_close(clone.targets(x)[0], obj.targets(x)[0])
    assert obj._captured == [] and clone._captured == []  # each targets() call took exactly its own layers
    with torch.no_grad():
        for p in clone.teacher.parameters():
            p.mul_(-1.0)  # the copy's targets now come from a different teacher; the original's stay
    assert not torch.allclose(clone.targets(x)[0], obj.targets(x)[0])
