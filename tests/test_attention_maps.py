"""Attention maps beside Grad-CAM: the weights are the ones the forward pass uses."""

import numpy as np
import torch

from tsfmicro.attention_maps import _timm_attention_weights, attention_maps, cam_peak, grid_cell
from tsfmicro.model import ManhattanSelfAttention, build_model


def frames(batch, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    onset = torch.randn(batch, 3, size, size, generator=g)
    return onset, onset + 0.3 * torch.randn(batch, 3, size, size, generator=g)


def test_timm_attention_weights_reproduce_the_blocks_output():
    torch.manual_seed(0)
    model = build_model("tiny", 3, "ts_late").eval()
    attn = model.spatial.blocks[-1].attn
    tokens = torch.randn(2, 16, attn.qkv.in_features)
    with torch.no_grad():
        weights = _timm_attention_weights(attn, tokens)  # (B, heads, N, N)
        v = attn.qkv(tokens).reshape(2, 16, 3, attn.num_heads, attn.head_dim)[:, :, 2].transpose(1, 2)
        want = attn.proj((weights @ v).transpose(1, 2).reshape(2, 16, -1))
        torch.testing.assert_close(want, attn(tokens), atol=1e-5, rtol=1e-4)


def test_retention_weights_reproduce_the_full_form_and_carry_the_decay():
    torch.manual_seed(0)
    attn = ManhattanSelfAttention(16, 2, decay_init=2, decay_range=6, decomposed=False)
    x = torch.randn(1, 4, 5, 16)
    with torch.no_grad():
        weights = attn.attention_weights(x)  # (1, 2, 20, 20)
        v = attn.qkv(x).reshape(1, 4, 5, 3, 2, 8)[..., 2, :, :].permute(0, 3, 1, 2, 4).reshape(1, 2, 20, 8)
        out = (weights @ v).transpose(1, 2).reshape(1, 4, 5, 16)
        lepe = attn.lepe(v.reshape(1, 2, 4, 5, 8).permute(0, 1, 4, 2, 3).reshape(1, 16, 4, 5)).permute(0, 2, 3, 1)
        torch.testing.assert_close(attn.proj(out + lepe), attn(x), atol=1e-5, rtol=1e-4)
        # with q = k = 0 the weights are the normalised decay gamma ** manhattan distance
        attn.qkv.weight[:32].zero_()
        attn.qkv.bias[:32].zero_()
        flat = attn.attention_weights(x)[0, 1]  # head 1
    gamma = 1 - 2 ** (-2 - 6 / 2)
    query = (2, 3)
    decay = torch.tensor([[gamma ** (abs(r - query[0]) + abs(c - query[1])) for c in range(5)] for r in range(4)])
    torch.testing.assert_close(flat[query[0] * 5 + query[1]].reshape(4, 5), decay / decay.sum(), atol=1e-6, rtol=1e-5)


def test_attention_maps_per_branch_sum_to_one_and_follow_the_query():
    torch.manual_seed(0)
    model = build_model("tiny", 3, "ts_late")
    onset, apex = frames(2)
    maps = attention_maps(model, onset, apex, [(0, 0), (3, 2)])
    assert set(maps) == {"spatial", "temporal"}
    for array in maps.values():
        assert array.shape == (2, 4, 4)
        np.testing.assert_allclose(array.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    other = attention_maps(model, onset, apex, [(3, 3), (3, 2)])
    assert not np.allclose(maps["temporal"][0], other["temporal"][0])  # another query, another row
    np.testing.assert_allclose(maps["temporal"][1], other["temporal"][1])
    assert set(attention_maps(build_model("tiny", 3, "temporal_only", temporal_branch="conv"), onset, apex,
                              [(0, 0), (0, 0)])) == set()  # no attention anywhere: no map
    assert set(attention_maps(build_model("tiny", 3, "spatial_only"), onset, apex, [(0, 0), (0, 0)])) == {"spatial"}


def test_cam_peak_to_grid_cell():
    cam = np.zeros((64, 64))
    cam[40, 7] = 1.0
    assert cam_peak(cam) == (40, 7)
    assert grid_cell((40, 7), 64, 4) == (2, 0)
    assert grid_cell((63, 63), 64, 4) == (3, 3)
    assert grid_cell((223, 0), 224, 14) == (13, 0)


def test_attention_at_each_branchs_own_grad_cam_peak_and_its_summary():
    from tsfmicro.attention_maps import attention_summary
    from tsfmicro.gradcam import _attention_at_peaks

    torch.manual_seed(0)
    model = build_model("tiny", 3, "ts_late").eval()
    onset, apex = frames(1)
    temporal_cam, spatial_cam = np.zeros((64, 64)), np.zeros((64, 64))
    temporal_cam[5, 60], spatial_cam[50, 20] = 1.0, 1.0  # peaks in cells (0, 3) and (3, 1) of the 4 x 4 grid
    panel = {"temporal": temporal_cam, "spatial": spatial_cam, "outcome": "correct"}
    found = _attention_at_peaks(model, onset, apex, panel)
    assert found["grid"] == 4 and found["temporal_query"] == (0, 3) and found["spatial_query"] == (3, 1)
    for branch, query in (("temporal", (0, 3)), ("spatial", (3, 1))):
        np.testing.assert_allclose(found[f"{branch}_attention"], attention_maps(model, onset, apex, [query])[branch][0],
                                   rtol=1e-5, atol=1e-7)
    no_spatial = _attention_at_peaks(build_model("tiny", 3, "temporal_only"), onset, apex,
                                     {"temporal": temporal_cam, "spatial": None})
    assert no_spatial["spatial_attention"] is None and no_spatial["temporal_attention"].shape == (4, 4)

    own = np.full((4, 4), 0.5 / 15)
    own[0, 3] = 0.5  # attends most to itself, 8x uniform
    flat = np.full((4, 4), 1 / 16)
    flat[2, 2] += 1e-3
    panels = [{"outcome": "correct", "temporal_query": (0, 3), "temporal_attention": own,
               "spatial_query": (3, 1), "spatial_attention": flat},
              {"outcome": "wrong", "temporal_query": (1, 1), "temporal_attention": own,
               "spatial_query": (3, 1), "spatial_attention": None}]
    text = attention_summary(panels)
    assert "in the temporal branch the query token attends most to its own cell in 1 of 2 clips" in text
    assert "on average correct 8.0x, wrong 8.0x the uniform weight" in text
    assert "in the spatial branch the query token attends most to its own cell in 0 of 1 clips" in text
    assert "correct 1.0x the uniform" in text and "spatial" in text
