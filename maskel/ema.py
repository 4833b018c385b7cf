"""An exponential moving average of a module's weights, the copy that validation scores and the
inference checkpoints hold (shared by the generator's trainer and the diffusion loop).

Floating-point parameters and buffers are averaged, so an EMA-updated VQ codebook (its
``embed`` and ``cluster_size`` buffers) is averaged with the encoder that lands in it; integer
and bool buffers (``initted`` flags, counters) are copied from the live module.
``torch.optim.swa_utils.AveragedModel`` would do the averaging but lerps every buffer when asked
to average buffers at all, which a bool buffer refuses.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without gradients, in eval mode: the EMA holder."""
    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema.eval()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, tensor by tensor (decay 0: a copy)."""
    live = dict(model.named_parameters()) | dict(model.named_buffers())
    for name, held in [*ema.named_parameters(), *ema.named_buffers()]:
        src = live[name].detach()
        if held.is_floating_point():
            held.lerp_(src.to(held.dtype), 1.0 - decay)
        else:
            held.copy_(src)
