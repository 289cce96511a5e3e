"""HTNet (Wang et al., Neurocomputing 602:128196, 2024; arXiv 2307.14637): four facial crops of
the onset->apex flow image assembled into one 28 x 28 image, then a three-level hierarchical
transformer (NesT-style: local attention inside windows, a conv "aggregate" between levels).

Written from the facts of /work/shared/reference/baselines.md, section 3 ("HTNet"), which cites
the authors' repository (github wangzhifengharrison/HTNet @91cf4bd: main_HTNet.py, Model.py);
no code copied.

Input: the (B, 3, 28, 28) flow image (u, v, strain). The authors' PNGs are read with cv2.imread,
so their tensor holds (strain, v, u) in 0..255; ours holds (u, v, strain) as the flow input
gives it. A channel permutation only permutes the patch embedding's learnt weights; the scale
differs too (the authors' 0..255 unnormalised, ours the flow input's values, tsfmicro.data.flow).

Crops (baselines.md Sec. 3 "Input construction"). The authors detect 5 landmarks per clip with
MTCNN on the apex image resized to 28 x 28 and fall back to five fixed points when no face is
found; each point is clamped to [7, 21] and truncated to an integer, and a 14 x 14 crop is cut
around four of them (the nose is unused); the crops are assembled as [crop 0 | crop 1] over
[crop 3 | crop 4]. We use the authors' fallback points for every clip (:data:`CROP_POINTS`):
our face crops are already aligned by MTCNN (tsfmicro.data.faces), so the landmarks sit at
nearly the same place in every clip, and the data gives no per-clip landmarks. Taking per-clip
landmarks would mean a second input (e.g. ``inputs = ("flow", "landmarks")``); not built.

Quirks of the authors' code, reproduced with ``quirks="authors"`` (the default) and corrected
with ``quirks="fixed"``; nothing else differs between the two:

- transposed crop centres: a landmark is (x, y) = (column, row), but the code cuts
  ``image[x-7:x+7, y-7:y+7]``, i.e. rows from x and columns from y. With the fallback points the
  crops are rows 2-16 x cols 4-18, rows 14-28 x cols 3-17, rows 3-17 x cols 14-28 and rows
  13-27 x cols 14-28: the face's quadrants, assembled transposed (top-left, bottom-left over
  top-right, bottom-right). ``fixed``: rows from y, columns from x (left eye | right eye over
  left | right mouth corner).
- one-token attention windows: the 28 px image in 7 px patches is a 4 x 4 token map, and the
  NesT code keeps a window's token count at (4 // 4) x (4 // 4) = 1 token at every level
  (4 x 4 windows on the 4 x 4 map, 2 x 2 on the 2 x 2 map, 1 on the 1 x 1 map). A softmax
  over one key is 1, so every attention is a linear map of its own token: no token ever attends
  to another, and space is mixed only by the aggregate convs. The positional embedding is one
  learnt scalar per level. ``fixed``: windows of 2 x 2 tokens, so each facial crop (14 x 14 px =
  2 x 2 tokens) is one window at the first level and the four crops' tokens attend to each other
  at the second; one learnt positional value per window position (4, 4 and 1).

Also as the authors have it, and kept in both: the attention's head width is dim // heads (256 //
3 = 85, so q, k, v are 255, 510 and 1020 wide; the ``dim_head=64`` argument of their code is
ignored); pre-norm blocks with a LayerNorm over channels; dropout 0; PyTorch's default
initialisation (the positional values drawn from a standard normal).

Layers (``paper``, the authors' sizes; baselines.md Sec. 3 "Layers"):

- patch embedding: 7 x 7 patches (147 values) -> 1x1 conv to 256: (B, 256, 4, 4);
- levels of widths 256, 512, 1024, heads 3, 6, 12, depths 2, 2, 10; each block: x + attn(norm(x)),
  then x + mlp(norm(x)) with a 1x1-conv MLP of 4 x width and GELU;
- between levels: conv 3x3 (d -> 2d) -> channel LayerNorm -> max pool 3, stride 2, padding 1:
  4 x 4 -> 2 x 2 -> 1 x 1;
- head: channel LayerNorm, mean over the map, Linear(1024 -> classes).

Parameters: 139,582,982 for 3 classes (~139.6 M; tests/test_baseline_networks.py). ``tiny``: the
same structure at width 32 (heads 3, depths 2, 2, 2), about 0.6 M, for the CPU demo.

Recipe (baselines.md Sec. 3 "Training"), ``authors_code``: Adam, learning rate 5e-5, no weight
decay, batch 256, 800 epochs, no shuffling (``sampling="in_order"``), plain cross-entropy, no
schedule, no augmentation. The authors report each test subject's best epoch chosen on its own
test data (our ``oracle`` protocol); our ``fixed`` protocol is the last epoch. The HTNet paper's
text was not read, so the recipe ``paper`` is refused for this network.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from tsfmicro.model.networks._common import FLOW, preset_config
from tsfmicro.model.registry import register_model

QUIRKS = ("authors", "fixed")  # the run option ``quirks`` (tsfmicro.options)
# The authors' fallback landmarks (x, y) on the 28 x 28 image, MTCNN's order: left eye, right
# eye, nose, left and right mouth corner (baselines.md Sec. 3; main_HTNet.py:76-82).
CROP_POINTS = ((9.528073, 11.062551), (21.396168, 10.919773), (15.380184, 17.380562),
               (10.255435, 22.121233), (20.583706, 22.25584))
CROPS_USED = ((0, 1), (3, 4))  # [crop 0 | crop 1] over [crop 3 | crop 4]; the nose is unused


@dataclass(frozen=True)
class HTNetConfig:
    image_size: int = 28
    patch_size: int = 7
    dim: int = 256  # the first level's width; each level doubles it
    heads: int = 3  # the first level's; each level doubles them
    depths: tuple[int, ...] = (2, 2, 10)  # blocks per level, bottom to top
    mlp_mult: int = 4
    crop_size: int = 14  # each facial crop is crop_size x crop_size
    quirks: str = "authors"  # QUIRKS
    num_classes: int = 3

    def __post_init__(self) -> None:
        if self.quirks not in QUIRKS:
            raise ValueError(f"unknown quirks {self.quirks!r}; valid: {', '.join(QUIRKS)}")
        if self.image_size != 2 * self.crop_size or self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be two crops ({self.crop_size}) wide and a "
                             f"multiple of the patch size {self.patch_size}")

    @property
    def token_side(self) -> int:
        """Side of the first level's token map (4 at 28 px, 7 px patches)."""
        return self.image_size // self.patch_size

    def window_sides(self) -> list[int]:
        """Tokens per window side at each level (bottom to top): 1, 1, 1 as the authors' code has
        it; ``fixed``: a facial crop's tokens (2), capped by the level's map side."""
        levels = len(self.depths)
        sides = [self.token_side // 2 ** level for level in range(levels)]  # map sides: 4, 2, 1
        if self.quirks == "authors":
            # NesT keeps the window's token count at (fmap // 2**(levels-1))**2 at every level
            return [max(self.token_side // 2 ** (levels - 1), 1)] * levels
        region = self.crop_size // self.patch_size
        return [min(region, side) for side in sides]


PRESETS = {
    "paper": HTNetConfig(),  # main_HTNet.py:222-231
    "tiny": HTNetConfig(dim=32, heads=3, depths=(2, 2, 2)),
}

RECIPES = {
    "authors_code": dict(optimizer="adam", learning_rate=5e-5, weight_decay=0.0, batch_size=256, epochs=800,
                         sampling="in_order"),
}


def crop_corners(quirks: str, crop_size: int = 14) -> list[tuple[int, int]]:
    """(first row, first column) of the crops of points 0, 1, 3, 4 (in assembly order)."""
    half = crop_size // 2
    corners = []
    for index in (i for row in CROPS_USED for i in row):
        x, y = (int(min(max(value, half), 2 * crop_size - half)) for value in CROP_POINTS[index])  # clamp, truncate
        row, column = (x, y) if quirks == "authors" else (y, x)  # the authors' code: rows from x
        corners.append((row - half, column - half))
    return corners


def assemble_crops(image: torch.Tensor, quirks: str, crop_size: int = 14) -> torch.Tensor:
    """(B, C, 28, 28) -> the four 14 x 14 crops as one (B, C, 28, 28) image."""
    crops = [image[:, :, r:r + crop_size, c:c + crop_size] for r, c in crop_corners(quirks, crop_size)]
    top = torch.cat(crops[:2], dim=3)
    bottom = torch.cat(crops[2:], dim=3)
    return torch.cat([top, bottom], dim=2)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (the authors' per-token norm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows of ``window`` x ``window`` tokens."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.head_dim = dim // heads  # 85 at width 256, 3 heads: inner width 255, as the authors have it
        inner = self.head_dim * heads
        self.qkv = nn.Conv2d(dim, 3 * inner, kernel_size=1, bias=False)
        self.out = nn.Conv2d(inner, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s = self.window
        q, k, v = self.qkv(x).chunk(3, dim=1)  # (B, inner, H, W) each

        def windows(t: torch.Tensor) -> torch.Tensor:  # -> (B * windows, heads, s*s, head_dim)
            t = t.reshape(b, self.heads, self.head_dim, h // s, s, w // s, s)
            t = t.permute(0, 3, 5, 1, 4, 6, 2)  # (B, H/s, W/s, heads, s, s, head_dim)
            return t.reshape(-1, self.heads, s * s, self.head_dim)

        q, k, v = windows(q), windows(k), windows(v)
        attention = (q @ k.transpose(-2, -1) * self.head_dim ** -0.5).softmax(dim=-1)  # one key: all 1
        out = attention @ v  # (B * windows, heads, s*s, head_dim)
        out = out.reshape(b, h // s, w // s, self.heads, s, s, self.head_dim)
        out = out.permute(0, 3, 6, 1, 4, 2, 5).reshape(b, self.heads * self.head_dim, h, w)
        return self.out(out)


class Block(nn.Module):
    """Pre-norm transformer block on a (B, C, H, W) map: attention, then a 1x1-conv MLP."""

    def __init__(self, dim: int, heads: int, window: int, mlp_mult: int):
        super().__init__()
        self.norm1 = ChannelNorm(dim)
        self.attention = WindowAttention(dim, heads, window)
        self.norm2 = ChannelNorm(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mlp_mult * dim, 1), nn.GELU(), nn.Conv2d(mlp_mult * dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Level(nn.Module):
    """One level: a learnt positional value per window position, added once, then the blocks."""

    def __init__(self, dim: int, heads: int, window: int, depth: int, mlp_mult: int):
        super().__init__()
        self.window = window
        self.position = nn.Parameter(torch.randn(window * window))  # the authors': randn(seq_len)
        self.blocks = nn.Sequential(*(Block(dim, heads, window, mlp_mult) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        s = self.window
        position = self.position.view(s, s).repeat(h // s, w // s)  # the same in every window, (H, W)
        return self.blocks(x + position)


class HTNet(nn.Module):
    """``model(flow)`` -> logits (B, classes); flow: (B, 3, 28, 28) u, v, strain."""

    inputs = FLOW  # the model contract (tsfmicro.model.registry)

    def __init__(self, config: HTNetConfig):
        super().__init__()
        self.config = config
        self.image_size = config.image_size
        p = config.patch_size
        self.patch_embedding = nn.Conv2d(3 * p * p, config.dim, kernel_size=1)  # 147 -> 256 per patch
        widths = [config.dim * 2 ** level for level in range(len(config.depths))]  # 256, 512, 1024
        heads = [config.heads * 2 ** level for level in range(len(config.depths))]  # 3, 6, 12
        self.levels = nn.ModuleList(Level(d, n, s, depth, config.mlp_mult) for d, n, s, depth in
                                    zip(widths, heads, config.window_sides(), config.depths))
        self.aggregates = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, 2 * d, 3, padding=1), ChannelNorm(2 * d), nn.MaxPool2d(3, stride=2, padding=1))
            for d in widths[:-1])
        self.norm = ChannelNorm(widths[-1])
        self.classifier = nn.Linear(widths[-1], config.num_classes)  # 1024 -> classes

    def patches(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, 28, 28) -> (B, 147, 4, 4): each 7 x 7 patch's values (row, column, channel order)."""
        b, c, size, _ = image.shape
        p, n = self.config.patch_size, size // self.config.patch_size
        patches = image.reshape(b, c, n, p, n, p).permute(0, 3, 5, 1, 2, 4)  # (B, p, p, C, n, n)
        return patches.reshape(b, p * p * c, n, n)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        return self.classify(assemble_crops(flow, self.config.quirks, self.config.crop_size))

    def classify(self, assembled: torch.Tensor) -> torch.Tensor:
        """The transformer on the assembled crops (B, 3, 28, 28) -> logits (B, classes)."""
        x = self.patch_embedding(self.patches(assembled))  # (B, 256, 4, 4)
        for level, aggregate in zip(self.levels, [*self.aggregates, None]):
            x = level(x)  # (B, d, s, s)
            if aggregate is not None:
                x = aggregate(x)  # (B, 2d, s/2, s/2)
        return self.classifier(self.norm(x).mean(dim=(2, 3)))  # (B, classes)

    def feature_layers(self) -> dict[str, nn.Module]:
        """The first two levels' maps (B, 256, 4, 4) and (B, 512, 2, 2) for Grad-CAM (the top one is 1 x 1)."""
        return {f"level{i + 1}": level for i, level in enumerate(self.levels[:-1])}


@register_model("htnet", options=("quirks",), recipes=RECIPES, presets=PRESETS)
def htnet(preset: str, num_classes: int, fusion: str, quirks: str | None = None) -> HTNet:
    """HTNet for ``num_classes`` classes; ``quirks`` (default the authors'): QUIRKS."""
    config = preset_config(PRESETS, preset, num_classes)
    return HTNet(replace(config, quirks=quirks) if quirks is not None else config)
