"""Block masks on 1-, 2- and 3-axis grids; core.mae and core.jepa training on a token encoder.

Reference for the block shapes: I-JEPA's ``MaskCollator._sample_block_size`` (github.com/facebookresearch/ijepa,
``src/masks/multiblock.py``): one ``rand`` sets the scale and the aspect ratio, ``max_keep = int(H * W * s)``,
``h = round(sqrt(max_keep * ar))``, ``w = round(sqrt(max_keep / ar))``, each decreased until below the grid.
MAE's loss: github.com/facebookresearch/mae ``models_mae.py`` ``forward_loss`` (per-patch normalised target,
unbiased variance, eps 1e-6; mean over features, then over masked patches).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from omnissl.builtin import toy_token_source
from omnissl.interfaces import Progress, Views
from omnissl.nn.masking import block_extents, multi_block_masks
from omnissl.nn.token_encoder import TokenTransformer, TokenTransformerConfig
from omnissl.objectives.block_masking import BlockMasking, BlockMaskingConfig
from omnissl.objectives.jepa import JEPAConfig, JEPAObjective
from omnissl.objectives.mae import MAEConfig, MAEObjective
from omnissl.objectives.token_masking import TokenMasking, TokenMaskingConfig
from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext

GRIDS = [(64,), (14, 14), (4, 8, 8)]
_REGISTRY = []


def _registry():
    """The core's own components only, built once for the module."""
    if not _REGISTRY:
        _REGISTRY.append(PluginManager(autoload=False).registry)
    return _REGISTRY[0]


def ijepa_block_size(rand, height, width, scale, aspect):
    max_keep = int(height * width * (scale[0] + rand * (scale[1] - scale[0])))
    ar = aspect[0] + rand * (aspect[1] - aspect[0])
    h, w = int(round(math.sqrt(max_keep * ar))), int(round(math.sqrt(max_keep / ar)))
    while h >= height:
        h -= 1
    while w >= width:
        w -= 1
    return h, w


def _unravel(flat, grid):
    coords = []
    for size in reversed(grid):
        coords.append(flat % size)
        flat = flat // size
    return list(reversed(coords))


@pytest.mark.parametrize("grid", GRIDS)
def test_block_masks_shape_and_ratio_invariants(grid):
    n, batch, m = math.prod(grid), 5, 4
    for seed in range(6):
        masks = multi_block_masks(batch, grid, torch.Generator().manual_seed(seed), num_targets=m)
        kb = math.prod(masks.block_shape)
        assert masks.target_blocks.shape == (batch, m, kb) and masks.target_idx.shape == (batch, m * kb)
        assert all(1 <= e < s for e, s in zip(masks.block_shape, grid))
        # every block is an axis-aligned box of block_shape inside the grid
        coords = _unravel(masks.target_blocks, grid)
        for c, extent in zip(coords, masks.block_shape):
            assert torch.equal(c.amax(dim=2) - c.amin(dim=2), torch.full((batch, m), extent - 1))
        # block share of the free axes within the scale range (up to rounding of each extent)
        lo, hi = 0.15, 0.2
        slack = math.prod(e + 0.5 for e in masks.block_shape) / kb  # rounding an extent by 1/2 at most
        assert lo / slack - 1 / n <= kb / n <= hi * slack + 1 / n
        # context: the fixed size, sorted, unique, disjoint from every target token
        kc = min(math.prod(masks.context_shape), n - m * kb)
        assert masks.context_idx.shape == (batch, kc)
        assert (masks.context_idx.diff(dim=1) > 0).all()
        assert not masks.target_mask.gather(1, masks.context_idx).any()
        union = torch.zeros(batch, n, dtype=torch.bool).scatter_(1, masks.target_idx, True)
        assert torch.equal(union, masks.target_mask)


def test_two_axis_block_sizes_are_ijepas():
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        masks = multi_block_masks(2, (14, 14), gen, target_scale=(0.15, 0.2), target_aspect_ratio=(0.75, 1.5))
        rand = float(torch.rand(1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
        assert masks.block_shape == ijepa_block_size(rand, 14, 14, (0.15, 0.2), (0.75, 1.5))


def test_three_axis_extents_and_full_axes():
    # on three free axes the product of the extents is the block volume up to rounding, ratio r between axes 0 and 2
    e = block_extents((16, 16, 16), 0.2, [1.5, 1.5])
    assert e[0] > e[1] > e[2] and abs(math.prod(e) - int(0.2 * 16**3)) / (0.2 * 16**3) < 0.15
    masks = multi_block_masks(3, (4, 8, 8), torch.Generator().manual_seed(0), full_axes=(0,))
    assert masks.block_shape[0] == 4  # V-JEPA tubes span every frame
    t, _, _ = _unravel(masks.target_blocks, (4, 8, 8))
    assert torch.equal(t.amin(dim=2), torch.zeros(3, 4, dtype=torch.long)) and torch.equal(t.amax(dim=2), torch.full((3, 4), 3))


def test_block_masks_are_seeded_and_reject_bad_grids():
    a = multi_block_masks(4, (14, 14), torch.Generator().manual_seed(3))
    b = multi_block_masks(4, (14, 14), torch.Generator().manual_seed(3))
    c = multi_block_masks(4, (14, 14), torch.Generator().manual_seed(4))
    assert torch.equal(a.context_idx, b.context_idx) and torch.equal(a.target_idx, b.target_idx)
    assert a.block_shape != c.block_shape or not torch.equal(a.target_idx, c.target_idx)
    with pytest.raises(ValueError, match="1 to 3"):
        multi_block_masks(2, (2, 2, 2, 2), torch.Generator())
    with pytest.raises(ValueError, match="context tokens"):
        multi_block_masks(2, (8,), torch.Generator(), num_targets=8, target_scale=(0.5, 0.5))
    with pytest.raises(ValueError, match="full_axes"):
        multi_block_masks(2, (8, 8), torch.Generator(), full_axes=(0, 1))


def test_block_masking_view_generator_reads_the_grid():
    batch = torch.randn(3, 16, 6)
    views = BlockMasking(BlockMaskingConfig())(batch, torch.Generator().manual_seed(0))
    assert views.info["grid"] == (16,) and views.inputs[0] is batch
    views = BlockMasking(BlockMaskingConfig(grid=[4, 4]))(batch, torch.Generator().manual_seed(0))
    assert views.info["grid"] == (4, 4) and views.info["target_blocks"].shape[:2] == (3, 4)
    with pytest.raises(ValueError, match="target_scale"):
        BlockMaskingConfig(target_scale=(0.3, 0.2))


def _token_setup(seed=0):
    torch.manual_seed(seed)
    source = toy_token_source()
    encoder = TokenTransformer(6, TokenTransformerConfig(dim=32, depth=2, heads=4))
    return source, encoder


def test_mae_loss_is_maes_formula_on_the_unseen_tokens():
    source, encoder = _token_setup()
    batch = source.data[:4]
    views = TokenMasking(TokenMaskingConfig(context_ratio=0.25, target_ratio=0.75))(batch, torch.Generator().manual_seed(0))
    objective = MAEObjective(32, 6, MAEConfig(decoder_dim=16, decoder_depth=1, decoder_heads=2))
    out = objective(encoder, views)
    keep = views.info["context_idx"]
    with torch.no_grad():
        pred = objective.decoder(encoder(batch, keep=keep).tokens, keep, 16)
    target = (batch - batch.mean(-1, keepdim=True)) / (batch.var(-1, keepdim=True) + 1e-6) ** 0.5
    per_token = ((pred - target) ** 2).mean(-1)
    masked = torch.ones(4, 16, dtype=torch.bool)
    masked[torch.arange(4).unsqueeze(1), keep] = False
    assert torch.allclose(out.loss, per_token[masked].mean(), atol=1e-5)
    assert torch.allclose(out.logs["mask_ratio"], torch.tensor(12 / 16))
    # the decoder puts the visible tokens' embeddings exactly at their positions
    x = torch.randn(4, keep.shape[1], 32)
    probe = objective.decoder.embed(x)
    full = objective.decoder.mask_token.expand(4, 16, -1).clone()
    full[torch.arange(4).unsqueeze(1), keep] = probe
    ref = objective.decoder.predict(objective.decoder.trunk(full + _positions(16, 16)))
    assert torch.allclose(objective.decoder(x, keep, 16), ref, atol=1e-5)


def _positions(n, d):
    from omnissl.nn import sincos_positions

    return sincos_positions(n, d)


def test_mae_bad_inputs():
    source, encoder = _token_setup()
    objective = MAEObjective(32, 6, MAEConfig(decoder_dim=16, decoder_depth=1, decoder_heads=2))
    with pytest.raises(ValueError, match="context_idx"):
        objective(encoder, Views(inputs=[source.data[:2]], original=source.data[:2]))
    with pytest.raises(ValueError, match="target_dim"):
        MAEObjective.build(MAEConfig(), BuildContext(encoder=torch.nn.Linear(2, 2)))
    views = Views(inputs=[source.data[:2]], original=source.data[:2], info={"keep": torch.tensor([[0, 1], [2, 3]]), "targets": torch.randn(2, 16, 5)})
    with pytest.raises(ValueError, match="targets must be"):
        objective(encoder, views)


@pytest.mark.parametrize(
    ("objective_name", "views_name", "views_params"),
    [
        ("core.mae", "core.token_masking", {"context_ratio": 0.25, "target_ratio": 0.75}),
        ("core.mae", "core.block_masking", {"grid": [8, 2], "num_targets": 2}),
        ("core.jepa", "core.block_masking", {"grid": [8, 2], "num_targets": 2}),
        ("core.jepa", "core.token_masking", {}),
    ],
)
def test_masked_objectives_train_on_a_token_encoder(objective_name, views_name, views_params):
    """Built from the registry as a run would be: 40 Adam steps lower the loss on held-fixed masks."""
    registry = _registry()
    torch.manual_seed(0)
    source = toy_token_source()
    ctx = BuildContext(data=source)
    encoder = registry.get("encoders", "core.token_transformer").build({"dim": 32, "depth": 2}, ctx)
    ctx.encoder = encoder
    views_gen = registry.get("view_generators", views_name).build(views_params, ctx)
    objective = registry.get("objectives", objective_name).build({}, ctx)
    params = [p for p in (*encoder.parameters(), *objective.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    eval_views = views_gen(source.data[:32], torch.Generator().manual_seed(123))

    def eval_loss():
        with torch.no_grad():
            return float(objective(encoder, eval_views).loss)

    before = eval_loss()
    for step in range(40):
        views = views_gen(source.data[(step * 16) % 64 :][:16], torch.Generator().manual_seed(step))
        loss = objective(encoder, views).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        objective.after_step(Progress(step=step + 1, total_steps=40))
    after = eval_loss()
    assert after < 0.8 * before, f"{objective_name} + {views_name}: loss {before:.4f} -> {after:.4f}"


def test_jepa_per_block_predicts_each_block_from_the_same_context():
    source, encoder = _token_setup()
    batch = source.data[:3]
    views = BlockMasking(BlockMaskingConfig(grid=[8, 2], num_targets=3))(batch, torch.Generator().manual_seed(1))
    objective = JEPAObjective(encoder, JEPAConfig(predictor_dim=16))
    loss = objective(encoder, views).loss
    blocks, ctx_idx = views.info["target_blocks"], views.info["context_idx"]
    with torch.no_grad():
        context = encoder(batch, keep=ctx_idx).tokens
        full = F.layer_norm(objective.teacher(batch).tokens, (32,))
        ref = 0.0
        for j in range(3):
            pred = objective.predictor(context, ctx_idx, blocks[:, j], 16)
            target = torch.gather(full, 1, blocks[:, j].unsqueeze(-1).expand(-1, -1, 32))
            ref += F.smooth_l1_loss(pred, target) / 3
    assert torch.allclose(loss, ref, atol=1e-5)
