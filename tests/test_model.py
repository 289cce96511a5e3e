"""The TSFmicro network: shapes, fusion wiring, input dependence, decay masks, training."""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
import torch.nn.functional as F

from tsfmicro.model import (
    FUSIONS,
    PRESETS,
    TEMPORAL_BRANCHES,
    ManhattanSelfAttention,
    build_model,
    count_flops,
    count_parameters,
    decay_1d,
    decay_gammas,
    manhattan_decay_2d,
)
from tsfmicro.model.retention import ROTARY, apply_rotary, attention_tables, rotary_axial, rotary_flat

BOTH_BRANCHES = ("ts_late", "ts_early", "t_to_s", "s_to_t")


def frames(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    onset = torch.randn(batch, 3, size, size, generator=g)
    apex = onset + 0.3 * torch.randn(batch, 3, size, size, generator=g)
    return onset, apex


def tiny(fusion: str, num_classes: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return build_model("tiny", num_classes, fusion)


# ---------------------------------------------------------------- shapes and hooks


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_output_and_feature_shapes(preset, fusion):
    torch.manual_seed(0)
    model = build_model(preset, num_classes=7, fusion=fusion)
    cfg = model.config
    size, grid, top = cfg.image_size, cfg.image_size // 16, cfg.embed_dims[-1]
    assert (size, grid, top) == ((224, 14, 512) if preset == "paper" else (64, 4, 64))

    layers = model.feature_layers()
    expected_keys = {"temporal_only": {"temporal"}, "spatial_only": {"spatial"}}.get(fusion, {"temporal", "spatial"})
    assert set(layers) == expected_keys
    captured = {}
    for name, layer in layers.items():
        layer.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o.shape))

    if preset == "paper":  # keep the big one cheap
        model.eval()
    for batch in (1, 3):
        with torch.no_grad() if preset == "paper" else torch.enable_grad():
            logits = model(*frames(batch, size))
        assert logits.shape == (batch, 7)
        assert torch.isfinite(logits).all()
        # channels-first maps, usable as Grad-CAM targets without a reshape transform
        if "temporal" in captured:
            assert captured["temporal"] == (batch, top, grid, grid)
        if "spatial" in captured:
            stem_side = size // 2
            if fusion == "ts_early":  # the onset conv stem is that variant's spatial branch
                assert captured["spatial"] == (batch, cfg.embed_dims[0], stem_side, stem_side)
            else:
                assert captured["spatial"] == (batch, top, grid, grid)


# ---------------------------------------------------------------- fusion wiring


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_parameter_is_used_and_both_branches_learn(fusion):
    model = tiny(fusion)
    loss = F.cross_entropy(model(*frames(4, 64)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"{fusion}: parameters without gradient: {unused}"
    if fusion in BOTH_BRANCHES:
        # the first layer of each branch: the gradient has crossed the whole branch
        temporal = model.temporal.stem.proj[0].weight
        spatial = model.spatial.proj.weight if model.spatial is not None else model.onset_stem.proj[0].weight
        assert temporal.grad.abs().sum() > 0
        assert spatial.grad.abs().sum() > 0


def test_variants_are_different_networks():
    sizes = {f: count_parameters(tiny(f)) for f in FUSIONS}
    head = count_parameters(tiny("ts_late").head)
    # late fusion = both branches + one head; the ablations drop a whole branch
    assert sizes["ts_late"] == sizes["temporal_only"] + sizes["spatial_only"] - head
    # T-to-S moves the spatial final norm behind the sum: same size, different wiring
    assert sizes["t_to_s"] == sizes["ts_late"]
    assert sizes["s_to_t"] > sizes["ts_late"]  # + transposed convs
    assert sizes["ts_early"] < sizes["ts_late"]  # onset conv stem instead of the transformer
    model_late, model_t2s = tiny("ts_late").eval(), tiny("t_to_s").eval()
    with torch.no_grad():
        x = frames(2, 64)
        assert not torch.allclose(model_late(*x), model_t2s(*x))


# ---------------------------------------------------------------- input dependence


def test_spatial_only_ignores_apex():
    model = tiny("spatial_only").eval()
    onset, apex = frames(2, 64)
    with torch.no_grad():
        a = model(onset, apex)
        b = model(onset, apex + torch.randn_like(apex))
        c = model(onset + 0.5 * torch.randn_like(onset), apex)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 0


def test_temporal_only_depends_only_on_the_difference():
    model = tiny("temporal_only").eval()
    onset, apex = frames(2, 64)
    shift = torch.randn_like(onset)
    with torch.no_grad():
        a = model(onset, apex)
        b = model(onset + shift, apex + shift)  # same apex - onset (up to float rounding)
        c = model(onset, apex + 0.5 * torch.randn_like(apex))
    # logits at initialisation are small, so compare the two effects rather than use a fixed tolerance
    rounding, change = (a - b).abs().max(), (a - c).abs().max()
    assert change > 0 and rounding < 1e-3 * change, (rounding, change)


# ---------------------------------------------------------------- decay masks and attention


def reference_gammas(heads: int, init: float, head_range: float) -> list[float]:
    return [1 - 2 ** (-init - head_range * h / heads) for h in range(heads)]


def test_paper_gammas():
    cfg = PRESETS["paper"]
    per_stage = [
        decay_gammas(n, i, r).tolist() for n, i, r in zip(cfg.num_heads, cfg.decay_init, cfg.decay_range, strict=True)
    ]
    assert per_stage == [[0.75, 0.9375], [0.75, 0.9375], [0.75, 0.96875], [0.75, 0.96875]]
    assert cfg.decomposed == (True, True, False, False)
    for heads, init, head_range in [(2, 2, 4), (3, 1, 3), (4, 2, 6)]:
        torch.testing.assert_close(
            decay_gammas(heads, init, head_range), torch.tensor(reference_gammas(heads, init, head_range))
        )


@pytest.mark.parametrize("height,width", [(3, 4), (5, 5), (1, 6)])
def test_manhattan_decay_2d_matches_definition(height, width):
    gammas = decay_gammas(3, 2, 6)
    mask = manhattan_decay_2d(height, width, gammas)
    n = height * width
    assert mask.shape == (3, n, n)
    positions = [(r, c) for r in range(height) for c in range(width)]  # row-major token order
    for h, gamma in enumerate(reference_gammas(3, 2, 6)):
        for i, (r1, c1) in enumerate(positions):
            for j, (r2, c2) in enumerate(positions):
                decay = gamma ** (abs(r1 - r2) + abs(c1 - c2))
                assert math.isclose(math.exp(mask[h, i, j].item()), decay, rel_tol=1e-5)


@pytest.mark.parametrize("length", [1, 4, 9])
def test_decay_1d_matches_definition(length):
    gammas = decay_gammas(2, 2, 4)
    mask = decay_1d(length, gammas)
    assert mask.shape == (2, length, length)
    for h, gamma in enumerate(reference_gammas(2, 2, 4)):
        for i in range(length):
            for j in range(length):
                assert math.isclose(math.exp(mask[h, i, j].item()), gamma ** abs(i - j), rel_tol=1e-5)


def test_axial_rotary_depends_only_on_the_2d_offset():
    sin, cos = rotary_axial(6, 7, 8)
    q = apply_rotary(torch.randn(8).expand(6, 7, 8), sin, cos)
    k = apply_rotary(torch.randn(8).expand(6, 7, 8), sin, cos)
    # the same (row, column) offset from different places gives the same score
    torch.testing.assert_close(q[1, 2] @ k[3, 1], q[3, 5] @ k[5, 4])
    torch.testing.assert_close(q[0, 0] @ k[0, 0], q[4, 6] @ k[4, 6])
    assert not torch.allclose(q[1, 2] @ k[3, 1], q[1, 2] @ k[1, 3])  # row and column are distinct


@pytest.mark.parametrize("height,width,head_dim", [(3, 4, 8), (5, 2, 6), (1, 7, 4)])
def test_flat_rotary_matches_the_authors_definition(height, width, head_dim):
    """RMT's theta_shift, written out: index i = r * W + c, head_dim / 2 frequencies
    1 / 10000 ** linspace(0, 1, head_dim / 2), pair (2p, 2p + 1) turned by i * freq[p]."""
    x = torch.randn(2, height, width, head_dim, dtype=torch.float64)
    sin, cos = rotary_flat(height, width, head_dim)
    got = apply_rotary(x, sin.double(), cos.double())
    half = head_dim // 2
    freqs = [1.0 / 10000 ** (p / (half - 1)) if half > 1 else 1.0 for p in range(half)]
    want = torch.empty_like(x)
    for b in range(2):
        for r in range(height):
            for c in range(width):
                i = r * width + c
                for p in range(half):
                    angle = i * freqs[p]
                    x1, x2 = x[b, r, c, 2 * p].item(), x[b, r, c, 2 * p + 1].item()
                    want[b, r, c, 2 * p] = x1 * math.cos(angle) - x2 * math.sin(angle)
                    want[b, r, c, 2 * p + 1] = x2 * math.cos(angle) + x1 * math.sin(angle)
    # the tables are fp32, as in the authors' code
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def test_flat_rotary_scores_depend_on_the_flattened_offset():
    sin, cos = rotary_flat(4, 5, 8)
    q = apply_rotary(torch.randn(8).expand(4, 5, 8), sin, cos)
    k = apply_rotary(torch.randn(8).expand(4, 5, 8), sin, cos)
    # (0, 4) -> (1, 0) is one step in the flattened order, like (2, 1) -> (2, 2)
    torch.testing.assert_close(q[0, 4] @ k[1, 0], q[2, 1] @ k[2, 2])


def test_presets_use_the_authors_rotary_and_axial_is_an_option():
    assert PRESETS["paper"].rotary == PRESETS["tiny"].rotary == "flat"
    model = build_model("tiny", 5, "ts_late", rotary="axial")
    assert {m.rotary for m in model.modules() if isinstance(m, ManhattanSelfAttention)} == {"axial"}
    x = frames(2, 64)
    flat = build_model("tiny", 5, "ts_late").eval()
    axial = build_model("tiny", 5, "ts_late", rotary="axial").eval()
    axial.load_state_dict(flat.state_dict())  # same parameters, only the position encoding differs
    with torch.no_grad():
        assert not torch.allclose(flat(*x), axial(*x))
    with pytest.raises(ValueError, match="flat, axial"):
        build_model("tiny", rotary="spiral")
    assert ROTARY == ("flat", "axial")


def test_decay_and_rotary_tables_are_built_once_per_grid(monkeypatch):
    import tsfmicro.model.retention as retention

    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        seen.append(attn_mask)
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(retention.F, "scaled_dot_product_attention", spy)
    model = tiny("temporal_only").eval()
    with torch.no_grad():
        model(*frames(1, 64))
        first = list(seen)
        seen.clear()
        model(*frames(2, 64, seed=1))
    assert len(first) == len(seen) > 0
    assert all(a is b for a, b in zip(first, seen, strict=True))  # the same tensors, not rebuilt
    # both blocks of stage 3 (same grid and heads) share one mask too
    stage3 = [m for m in model.modules() if isinstance(m, ManhattanSelfAttention)][2:4]
    tables = [attention_tables(8, 8, s.head_dim, s.gammas, s.decomposed, s.rotary, torch.device("cpu"),
                               torch.float32) for s in stage3]
    assert tables[0] is tables[1]
    assert any(mask is tables[0].masks[0] for mask in seen)


def _attention_weights_in_bf16(height: int, width: int) -> torch.Tensor:
    """The decayed softmax weights of one head (HW, HW) as ManhattanSelfAttention applies them under
    bf16 autocast on the CPU: q = k = 0 and v = identity make the attention output the weights."""
    tokens = height * width
    attn = ManhattanSelfAttention(2 * tokens, 2, decay_init=2, decay_range=4, decomposed=True)
    with torch.no_grad():
        attn.qkv.weight.zero_()
        attn.qkv.bias.zero_()
        attn.qkv.weight[2 * 2 * tokens :] = torch.eye(2 * tokens)  # v = x
        attn.lepe.weight.zero_()
        attn.lepe.bias.zero_()
    captured = []
    attn.proj.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    x = torch.eye(tokens).repeat(1, 2).reshape(1, height, width, 2 * tokens)  # token j = e_j in both heads
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        attn(x)
    out = captured[0]  # (1, H, W, 2 * tokens), the input of the output projection
    assert out.dtype == torch.float32  # the attention result reaches the projection unrounded
    return out[0].reshape(tokens, 2, tokens)[:, 1]  # head 1 (gamma 0.9375, the slowest decay)


@pytest.mark.parametrize("height,width", [(1, 112), (112, 1)])
def test_bf16_mode_applies_the_decay_with_fp32_accuracy(height, width):
    """At 112 tokens along one axis (stage 1 of the paper preset), the decay reaching the softmax in
    bf16 mode is within 1e-3 relative of gamma ** distance computed in fp64 (a bf16 mask: ~6 %)."""
    weights = _attention_weights_in_bf16(height, width).double()
    gamma = 1 - 2 ** (-2 - 4 * 1 / 2)
    index = torch.arange(height * width, dtype=torch.float64)
    decay = gamma ** (index[:, None] - index[None, :]).abs()
    want = decay / decay.sum(dim=1, keepdim=True)  # q.k = 0: the softmax of the log decay alone
    relative = ((weights - want).abs() / want).max().item()
    assert relative < 1e-3, relative


def projections(attn: ManhattanSelfAttention, x: torch.Tensor):
    """q, k (rotated), v as lists per head of (H, W, d) tensors, batch element 0."""
    H, W, C = x.shape[1:]
    n, d = attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(x)[0].view(H, W, 3, n, d).unbind(2)  # each (H, W, n, d)
    sin, cos = (rotary_flat if attn.rotary == "flat" else rotary_axial)(H, W, d)
    q = [apply_rotary(q[:, :, h], sin, cos) for h in range(n)]
    k = [apply_rotary(k[:, :, h], sin, cos) for h in range(n)]
    return q, k, [v[:, :, h] for h in range(n)]


def finish(attn: ManhattanSelfAttention, out: torch.Tensor, v_heads) -> torch.Tensor:
    """Add LePE of v and apply the output projection, (H, W, C)."""
    v = torch.cat(v_heads, dim=-1)  # (H, W, C)
    lepe = attn.lepe(v.permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    return attn.proj(out + lepe)


@pytest.mark.parametrize("rotary", ROTARY)
def test_full_2d_attention_matches_explicit_decayed_softmax(rotary):
    torch.manual_seed(0)
    attn = ManhattanSelfAttention(16, 2, decay_init=2, decay_range=6, decomposed=False, rotary=rotary)
    x = torch.randn(1, 3, 4, 16)
    with torch.no_grad():
        got = attn(x)[0]
        q, k, v = projections(attn, x)
        H, W, d = 3, 4, 8
        out = torch.zeros(H, W, 16)
        for h, gamma in enumerate(reference_gammas(2, 2, 6)):
            for r1 in range(H):
                for c1 in range(W):
                    # weights gamma**distance * exp(q.k / sqrt(d)), normalised
                    w = torch.tensor(
                        [
                            [
                                gamma ** (abs(r1 - r2) + abs(c1 - c2)) * math.exp(q[h][r1, c1] @ k[h][r2, c2] / d**0.5)
                                for c2 in range(W)
                            ]
                            for r2 in range(H)
                        ]
                    )
                    out[r1, c1, h * d : (h + 1) * d] = (w[..., None] * v[h]).sum((0, 1)) / w.sum()
        want = finish(attn, out, v)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("rotary", ROTARY)
def test_decomposed_attention_is_rows_then_columns(rotary):
    torch.manual_seed(0)
    attn = ManhattanSelfAttention(16, 2, decay_init=2, decay_range=4, decomposed=True, rotary=rotary)
    x = torch.randn(1, 3, 4, 16)
    with torch.no_grad():
        got = attn(x)[0]
        q, k, v = projections(attn, x)
        H, W, d = 3, 4, 8
        out = torch.zeros(H, W, 16)
        for h, gamma in enumerate(reference_gammas(2, 2, 4)):
            rows = torch.zeros(H, W, d)  # pass 1: within each row, decay on column distance
            for r in range(H):
                for c1 in range(W):
                    w = torch.tensor(
                        [gamma ** abs(c1 - c2) * math.exp(q[h][r, c1] @ k[h][r, c2] / d**0.5) for c2 in range(W)]
                    )
                    rows[r, c1] = (w[:, None] * v[h][r]).sum(0) / w.sum()
            for c in range(W):  # pass 2: within each column on the row-pass output, decay on row distance
                for r1 in range(H):
                    w = torch.tensor(
                        [gamma ** abs(r1 - r2) * math.exp(q[h][r1, c] @ k[h][r2, c] / d**0.5) for r2 in range(H)]
                    )
                    out[r1, c, h * d : (h + 1) * d] = (w[:, None] * rows[:, c]).sum(0) / w.sum()
        want = finish(attn, out, v)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- temporal-branch ablation


@pytest.mark.parametrize("branch", TEMPORAL_BRANCHES)
def test_every_temporal_branch_has_the_paper_shapes_and_gradients(branch):
    torch.manual_seed(0)
    model = build_model("tiny", 3, "ts_late", temporal_branch=branch)
    onset, apex = frames(2, 64)
    logits = model(onset, apex)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    stage1 = model.temporal.stages[0].blocks[0].attn
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stage1.parameters())
    with torch.no_grad():
        features = model.temporal(apex - onset)
    assert features.shape == (2, 64, 4, 4)  # same widths and resolutions for every branch


def test_retention_no_decay_is_retention_with_every_gamma_one():
    torch.manual_seed(0)
    retention = build_model("tiny", 3, "ts_late").eval()
    no_decay = build_model("tiny", 3, "ts_late", temporal_branch="retention_no_decay").eval()
    no_decay.load_state_dict(retention.state_dict())  # the same parameters: only the decay differs
    x = frames(2, 64)
    with torch.no_grad():
        assert not torch.allclose(retention(*x), no_decay(*x))
        for module in retention.modules():
            if isinstance(module, ManhattanSelfAttention):
                module.gammas = (1.0,) * module.num_heads  # log(1) = 0: a zero mask
        torch.testing.assert_close(retention(*x), no_decay(*x), atol=1e-6, rtol=1e-5)


def test_ablation_branches_are_what_they_say():
    from tsfmicro.model.token_mixers import DepthwiseConvMixer, PlainMlp, PlainSelfAttention
    from tsfmicro.model.temporal import ConvFFN

    def blocks(branch):
        return [b for s in build_model("tiny", 3, "ts_late", temporal_branch=branch).temporal.stages for b in s.blocks]

    assert all(isinstance(b.attn, PlainSelfAttention) and isinstance(b.ffn, PlainMlp) for b in blocks("transformer"))
    assert all(isinstance(b.attn, DepthwiseConvMixer) and isinstance(b.ffn, ConvFFN) for b in blocks("conv"))
    assert all(not b.attn.decay for b in blocks("retention_no_decay"))
    assert all(b.attn.decay for b in blocks("retention"))
    assert PRESETS["paper"].temporal_branch == "retention"
    with pytest.raises(ValueError, match="retention, retention_no_decay, transformer, conv"):
        build_model("tiny", temporal_branch="mamba")


def test_transformer_branch_attends_globally_and_conv_branch_locally():
    from tsfmicro.model.token_mixers import DepthwiseConvMixer, PlainSelfAttention

    torch.manual_seed(0)
    x = torch.randn(1, 16, 16, 32)
    y = x.clone()
    y[0, 15, 15] += 1.0  # change one far corner token
    for module, reaches_far in ((PlainSelfAttention(32, 2), True), (DepthwiseConvMixer(32), False)):
        with torch.no_grad():
            changed = (module(x) - module(y))[0, 0, 0].abs().max().item()
        assert (changed > 1e-6) == reaches_far, (module, changed)


# ---------------------------------------------------------------- reproducibility and training


def test_t_to_s_head_keeps_pytorch_default_init_like_the_authors():
    """Every Linear starts truncated-normal with a zero bias, except the T-to-S head (the authors'
    T-to-S model never re-initialises it): PyTorch's uniform(+-1/sqrt(fan_in)) weights and bias."""
    for fusion in ("ts_late", "t_to_s"):
        model = tiny(fusion)
        others = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
                  and not name.startswith("head.")]
        assert others and all(torch.count_nonzero(m.bias) == 0 for m in others)
        assert all(abs(m.weight.std().item() - 0.02) < 0.004 for m in others if m.weight.numel() >= 1000)
        for layer in (model.head.fc, model.head.classifier):
            bound = 1 / math.sqrt(layer.in_features)
            if fusion == "t_to_s":
                assert torch.count_nonzero(layer.bias) == layer.out_features
                assert layer.bias.abs().max() <= bound and layer.weight.abs().max() <= bound
                assert layer.weight.abs().max() > 0.9 * bound  # uniform over the whole range, not N(0, 0.02)
            else:
                assert torch.count_nonzero(layer.bias) == 0
                assert abs(layer.weight.std().item() - 0.02) < 0.004


def test_same_seed_same_outputs():
    x = frames(2, 64)
    a, b = tiny("ts_late", seed=3).eval(), tiny("ts_late", seed=3).eval()
    with torch.no_grad():
        assert torch.equal(a(*x), b(*x))
    c = tiny("ts_late", seed=4).eval()
    with torch.no_grad():
        assert not torch.allclose(a(*x), c(*x))


def test_a_few_adamw_steps_reduce_the_loss():
    model = tiny("ts_late", num_classes=3)
    onset, apex = frames(8, 64, seed=1)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(onset, apex), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


# ---------------------------------------------------------------- size, entry point, errors


def readme_size_table() -> dict[tuple[str, str], dict[str, str]]:
    """README's "Network size" table: (preset, fusion) -> {"parameters": "12.79 M", "GFLOPs": "13.44"}."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    after = text[text.index("Network size"):].splitlines()
    start = next(k for k, line in enumerate(after) if line.startswith("|"))
    lines = list(itertools.takewhile(lambda line: line.startswith("|"), after[start:]))
    split = lambda line: [cell.strip() for cell in line.strip("|").split("|")]  # noqa: E731
    header, rows = split(lines[0]), [split(line) for line in lines[2:]]
    columns = []  # (preset, quantity) of each column after the first; the header says the input size too
    for cell in header[1:]:
        preset, size, quantity = re.fullmatch(r"`(\w+)`(?: \((\d+) px\))? (parameters|GFLOPs)", cell).groups()
        if size:
            assert int(size) == PRESETS[preset].image_size, cell
        columns.append((preset, quantity))
    table = {}
    for row in rows:
        fusion = re.match(r"`(\w+)`", row[0]).group(1)
        for (preset, quantity), value in zip(columns, row[1:]):
            table.setdefault((preset, fusion), {})[quantity] = value
    return table


README_SIZES = readme_size_table()


def test_readme_size_table_covers_every_preset_and_fusion():
    assert set(README_SIZES) == {(preset, fusion) for preset in PRESETS for fusion in FUSIONS}


@pytest.mark.parametrize("preset, fusion", sorted(README_SIZES))
def test_size_and_flops_match_the_readme_table(preset, fusion):
    model = build_model(preset, 5, fusion)
    shown = README_SIZES[(preset, fusion)]
    parameters = float(shown["parameters"].removesuffix(" M")) * 1e6
    assert count_parameters(model) == pytest.approx(parameters, rel=0.01), shown
    # GFLOPs within 1 %, or within the rounding of the printed digits (0.004 stands for 0.0035 to 0.0045)
    rounding = 0.5 * 10 ** -len(shown["GFLOPs"].partition(".")[2])
    assert abs(count_flops(model) / 1e9 - float(shown["GFLOPs"])) <= max(0.01 * float(shown["GFLOPs"]), rounding), shown
    assert model.training  # count_flops restores the mode


def test_tiny_flops_per_sample_do_not_depend_on_batch():
    model = tiny("ts_late")
    assert count_flops(model, batch_size=1) == count_flops(model, batch_size=2) > 0


def test_entry_point_from_package():
    import tsfmicro.model as m

    model = m.build_model("tiny", 3, "ts_late", image_size=48)
    assert model.config.image_size == 48 and model.config.num_classes == 3
    assert PRESETS["tiny"].image_size == 64  # overrides do not touch the preset
    assert model(*frames(2, 48)).shape == (2, 3)


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="ts_late.*ts_early.*t_to_s.*s_to_t.*temporal_only.*spatial_only"):
        build_model("tiny", 5, "late")
    with pytest.raises(ValueError, match="paper.*tiny"):
        build_model("huge")
    with pytest.raises(ValueError, match="image_size"):
        build_model("tiny", 5, "ts_late", imagesize=64)
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model("tiny", image_size=60)
