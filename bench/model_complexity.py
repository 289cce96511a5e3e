"""Parameters and forward GFLOPs per sample for every preset x fusion, as a markdown table.

    .venv/bin/python bench/model_complexity.py > model_complexity.md

CPU only, well under a minute. FLOPs are counted by torch.utils.flop_counter (see
tsfmicro.model.count_flops for what is and is not counted); 1 multiply-add = 2 FLOPs.
"""

from __future__ import annotations

import torch

from tsfmicro.model import FUSIONS, PRESETS, build_model, count_flops, count_parameters


def main() -> None:
    torch.manual_seed(0)
    print("| preset | input | fusion | parameters | GFLOPs / sample |")
    print("|---|---|---|---:|---:|")
    for preset, config in PRESETS.items():
        for fusion in FUSIONS:
            model = build_model(preset, num_classes=5, fusion=fusion)
            size = f"{config.image_size}x{config.image_size}"
            params, gflops = count_parameters(model), count_flops(model) / 1e9
            print(f"| {preset} | {size} | {fusion} | {params:,} | {gflops:.3f} |")
    print()
    print("num_classes = 5; forward pass in eval mode; counted by torch.utils.flop_counter.FlopCounterMode.")


if __name__ == "__main__":
    main()
