"""Draw the TSFmicro architecture diagram used on the Method page.

Run from the repository root:  python book/figures/architecture.py
Writes book/figures/architecture.svg (deterministic: no dates, fixed ids), so the file
only changes when this script does. `make book` runs it.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).with_name("architecture.svg")

TEMPORAL = "#d9ecff"   # blue: the "how" (motion) branch
SPATIAL = "#fde6cf"    # orange: the "where" (appearance) branch
FUSION = "#dff3dc"     # green: fusion and head
INPUT = "#eeeeee"


def box(ax, x, y, w, h, text, colour, size=9, weight="normal"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="#333333", linewidth=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size,
            weight=weight, wrap=True)
    return (x, y, w, h)


def arrow(ax, start, end, text=None, style="-|>", colour="#333333", dashed=False):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12,
                                 color=colour, linewidth=1.2,
                                 linestyle="--" if dashed else "-"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text,
                ha="center", va="bottom", fontsize=7.5, color="#444444")


def right(b):
    x, y, w, h = b
    return (x + w, y + h / 2)


def left(b):
    x, y, w, h = b
    return (x, y + h / 2)


def draw() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(13, 6.2))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 6.2)
    ax.axis("off")

    # inputs
    onset = box(ax, 0.1, 3.9, 1.3, 0.8, "onset frame\n224×224 RGB", INPUT)
    apex = box(ax, 0.1, 2.6, 1.3, 0.8, "apex frame\n224×224 RGB", INPUT)
    diff = box(ax, 1.9, 2.6, 1.3, 0.8, "difference\napex − onset", INPUT)
    arrow(ax, right(apex), left(diff))
    arrow(ax, (0.75, 3.9), (2.3, 3.4))

    # temporal branch (bottom row)
    stem = box(ax, 3.6, 2.6, 1.6, 0.8, "conv stem\n4× conv3×3 + BN\n112×112×64", TEMPORAL, 8)
    stages = box(ax, 5.6, 2.6, 2.6, 0.8,
                 "4 retention stages (RMT)\nManhattan-decay attention\n"
                 "widths 64→512, depths 1,1,2,1", TEMPORAL, 8)
    tmap = box(ax, 8.6, 2.6, 1.2, 0.8, "temporal map\n14×14×512", TEMPORAL, 8)
    arrow(ax, right(diff), left(stem))
    arrow(ax, right(stem), left(stages))
    arrow(ax, right(stages), left(tmap))

    # spatial branch (top row)
    resize = box(ax, 3.6, 3.9, 1.6, 0.8, "resize 14×14\n1×1 conv 3→512\n+ position embedding", SPATIAL, 8)
    blocks = box(ax, 5.6, 3.9, 2.6, 0.8, "2 transformer blocks\n4 heads, MLP ×4\n+ LayerNorm", SPATIAL, 8)
    smap = box(ax, 8.6, 3.9, 1.2, 0.8, "spatial map\n14×14×512", SPATIAL, 8)
    arrow(ax, right(onset), left(resize))
    arrow(ax, right(resize), left(blocks))
    arrow(ax, right(blocks), left(smap))

    # late fusion + head
    fuse = box(ax, 10.1, 3.25, 0.7, 0.8, "+", FUSION, 16, "bold")
    arrow(ax, right(tmap), (10.1, 3.45))
    arrow(ax, right(smap), (10.1, 3.85))
    head = box(ax, 11.1, 3.0, 1.8, 1.3,
               "head\nLinear 512→1024\nBN, Swish\nmean of 196 tokens\nLinear→classes", FUSION, 8)
    arrow(ax, right(fuse), left(head))

    ax.text(0.1, 5.9, "TSFmicro, T-S (late) fusion: the paper's method", fontsize=13, weight="bold")
    ax.text(0.1, 5.5, "spatial branch = where (appearance of the onset face);  "
            "temporal branch = how (motion between onset and apex)", fontsize=9.5, color="#444444")
    ax.text(3.6, 4.85, "spatial branch", fontsize=9, color="#a35a00", weight="bold")
    ax.text(3.6, 2.35, "temporal branch", fontsize=9, color="#0b5394", weight="bold",
            va="top")

    # the variants, one line each
    variants = [
        ("ts_late", "T-S (late): sum of the two 14×14×512 maps (above; the paper's method)"),
        ("ts_early", "T-S (early): a second conv stem on the onset frame, summed with the "
                     "difference stem at 112×112×64, then the retention stages"),
        ("s_to_t", "S-to-T: spatial map upsampled by 3 transposed convs to 112×112×64, "
                   "added to the temporal stem output"),
        ("t_to_s", "T-to-S: temporal tokens added to the spatial tokens before the spatial "
                   "branch's final LayerNorm"),
        ("temporal_only / spatial_only", "one branch alone (ablation baselines)"),
    ]
    ax.text(0.1, 1.75, "fusion variants (tsfmicro.model.FUSIONS)", fontsize=10, weight="bold")
    for row, (name, text) in enumerate(variants):
        y = 1.4 - row * 0.32
        ax.text(0.25, y, name, fontsize=8.5, family="monospace", color="#1a5e1a")
        ax.text(3.0, y, text, fontsize=8.5)
    return fig


def main() -> Path:
    plt.rcParams["svg.hashsalt"] = "tsfmicro"   # stable element ids
    plt.rcParams["svg.fonttype"] = "none"       # text stays text (small, searchable)
    fig = draw()
    fig.savefig(OUT, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return OUT


if __name__ == "__main__":
    print(main())
