"""Model size: parameter count and forward FLOPs per sample."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .network import TSFmicro


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics are not parameters)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: TSFmicro, batch_size: int = 1) -> int:
    """Forward FLOPs per sample of ``model(*inputs)`` (TSFmicro: ``model(onset, apex)``; any network
    of the model contract, tsfmicro.model.registry), counted by torch's FlopCounterMode.

    Counted (one multiply-add = 2 FLOPs): convolutions (also depthwise and transposed),
    Linear layers and matrix products, and attention: QK^T and AV of every
    scaled_dot_product_attention call. Attention runs on the math backend here, because
    on CPU the fused no-mask kernel (timm's spatial blocks) is invisible to
    FlopCounterMode; the count is the same as for the fused GPU kernels.
    Not counted: element-wise work (softmax, the added decay mask, rotary, norms,
    activations, residual sums, the difference frame) and the resize of the onset frame.

    The model is run once in eval mode with no_grad on random inputs on its own device;
    its training/eval mode is restored afterwards.
    """
    device = next(model.parameters()).device
    shape = (batch_size, 3, model.image_size, model.image_size)
    inputs = [torch.randn(shape, device=device) for _ in model.inputs]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // batch_size
