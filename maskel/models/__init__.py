"""MaSkel models: stage-1 X-ray MAE, stage-2 generator, discriminator; checkpoint loaders."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from maskel.checkpoint import load_checkpoint
from maskel.errors import BadCheckpoint
from maskel.models.generator import MaskelGenerator, build_generator
from maskel.models.mae import XrayMAE, build_mae


def _load_into(module: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BadCheckpoint(f"{where}: {len(bad)} weight tensor(s) hold NaN or infinity (first: {bad[0]})")
    try:
        module.load_state_dict(tensors)
    except RuntimeError as e:
        raise BadCheckpoint(f"{where}: weights do not match the model in its metadata ({str(e).splitlines()[0]})") from None


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[MaskelGenerator, dict[str, Any]]:
    """A stage-2 checkpoint -> (generator in eval mode on ``device``, metadata)."""
    tensors, meta = load_checkpoint(path, stage="stage2")
    gen = build_generator(meta["config"])
    _load_into(gen, tensors, str(path))
    return gen.to(device).eval(), meta


def load_mae(path: str | os.PathLike, device: str | torch.device = "cpu", resolution: int | None = None) -> tuple[XrayMAE, dict[str, Any]]:
    """A stage-1 checkpoint -> (frozen MAE in eval mode, metadata)."""
    tensors, meta = load_checkpoint(path, stage="stage1", resolution=resolution)
    mae = build_mae(meta["config"])
    _load_into(mae, tensors, str(path))
    mae.requires_grad_(False)
    return mae.to(device).eval(), meta


__all__ = ["MaskelGenerator", "XrayMAE", "build_generator", "build_mae", "load_generator", "load_mae"]
