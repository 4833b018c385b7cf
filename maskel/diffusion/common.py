"""What the DDPM and the super-resolution share: presets, the MONAI U-Net, in-memory training
tensors and a small resumable training loop.

Resume is exact: every step's batch indices, flips, timesteps and noise come from a generator
seeded by (seed, step), the learning rate is a function of the step, and weights, EMA weights and
optimiser moments are restored from ``state.safetensors``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from maskel import MaskelError
from maskel.checkpoint import (
    checkpoint_paths,
    load_checkpoint,
    load_state,
    make_meta,
    save_checkpoint,
    save_state,
)
from maskel.config import read_preset
from maskel.data.datasets import PairedData
from maskel.ema import ema_update, frozen_copy
from maskel.schedule import lr_at, step_seed

UNET_KEYS = ("channels", "attention_levels", "num_res_blocks", "norm_num_groups", "num_head_channels")


def load_preset(name_or_path: str, kind: str) -> dict[str, Any]:
    """A diffusion preset (``ddpm-tiny``, ``sr-tiny``, ...) or a TOML path; ``kind`` is ddpm or sr."""
    cfg = read_preset(name_or_path, ("resolution", "unet", "train"), kind=kind)
    cfg.setdefault("seed", 0)
    return cfg


def build_unet(unet: dict[str, Any], in_channels: int, out_channels: int) -> nn.Module:
    try:
        from monai.networks.nets import DiffusionModelUNet
    except ImportError as e:
        raise MaskelError(f"the diffusion parts need MONAI (pip install 'maskel[diffusion]'): {e}") from None

    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in unet.items() if k in UNET_KEYS}
    try:
        net = DiffusionModelUNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, **kw)
    except ValueError as e:  # MONAI checks channels / groups / attention levels
        raise MaskelError(f"bad [unet] settings ({e})") from None
    if not unet.get("mid_attention", True):
        # MONAI's middle block always attends over every position. An SR model trained on crops
        # would then attend over 16 times more positions on a whole 256² frame than in training,
        # and that attention was 80 % of its CPU time (a 256² x2 lift took 5.2 s instead of 0.65 s).
        net.middle_block.attention = nn.Identity()
    return net


def data_tensors(data: PairedData) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks (N, 1, R, R) float 0/1, X-rays (N, S, R, R) float in [0, 1]) of framed samples."""
    masks = torch.from_numpy(np.stack([s.mask for s in data.samples])[:, None].astype(np.float32))
    xrays = torch.from_numpy(np.stack([s.xray for s in data.samples]).astype(np.float32))
    return masks, xrays


def load_diffusion_checkpoint(path: str | Path, stage: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A ddpm / sr checkpoint (refused in one line when it is another stage)."""
    st = checkpoint_paths(path)[0]
    if st.suffix != ".safetensors" or not st.exists():
        raise MaskelError(f"{st}: checkpoint not found (a .safetensors file with its .json)")
    return load_checkpoint(st, stage=stage)


LossFn = Callable[[nn.Module, torch.Generator], torch.Tensor]


def train_loop(stage: str, cfg: dict[str, Any], model: nn.Module, loss_fn: LossFn, out: Path, resume: bool,
               data_summary: dict[str, Any]) -> int:  # fmt: skip
    """AdamW with warm-up + cosine LR and EMA weights; writes ``last.*`` (the EMA weights, for
    inference) and ``state.*`` (for --resume) every ``ckpt_every`` steps and at the end; Ctrl-C
    saves and exits 130. No ``best``: a diffusion loss is too noisy to pick a step by."""
    t = cfg["train"]
    total, seed = int(t["steps"]), int(cfg["seed"])
    decay = float(t.get("ema_decay", 0.0))
    ema = frozen_copy(model) if decay > 0 else model
    opt = torch.optim.AdamW(model.parameters(), lr=float(t["lr"]), weight_decay=float(t.get("weight_decay", 0.0)))
    modules = {"model": model, "ema": ema} if decay > 0 else {"model": model}
    step = 0
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        st = checkpoint_paths(out / "state")[0]
        if not st.exists():
            raise MaskelError(f"--resume: no training state in {out} (state.safetensors)")
        extra = load_state(st, modules, {"model": opt})
        if extra.get("stage") != stage:
            raise MaskelError(f"--resume: {st} is from {extra.get('stage')}, not {stage}")
        step = int(extra["step"])

    def save(loss: float) -> None:
        meta = make_meta(stage, cfg, step, {"loss": loss}, data_summary)
        save_checkpoint(out / "last", ema.state_dict(), meta)
        save_state(out / "state", modules, {"model": opt}, {"step": step, "stage": stage, "seed": seed})

    bar = tqdm(total=total, initial=step, desc=stage, unit="step", dynamic_ncols=True)
    every, log_every = int(t["ckpt_every"]), int(t.get("log_every", 10))
    running, t0 = math.nan, time.perf_counter()
    try:
        while step < total:
            gen = torch.Generator().manual_seed(step_seed(seed, step, 0))
            for g in opt.param_groups:
                g["lr"] = lr_at(step, float(t["lr"]), int(t["warmup"]), total)
            loss = loss_fn(model, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), float(t.get("grad_clip", 1.0)))
            opt.step()
            if decay > 0:
                ema_update(ema, model, decay)
            step += 1
            value = float(loss.detach())
            running = value if math.isnan(running) else 0.95 * running + 0.05 * value
            bar.set_postfix(loss=f"{running:.4f}")
            bar.update(1)
            if step % log_every == 0:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps({"step": step, "loss": round(running, 6), "s": round(time.perf_counter() - t0, 2)}) + "\n")
            if step % every == 0 or step == total:
                save(running)
    except KeyboardInterrupt:
        bar.close()
        save(running)
        print(f"interrupted at step {step}; state saved in {out} (continue with --resume)", file=sys.stderr)
        return 130
    bar.close()
    n = sum(p.numel() for p in model.parameters())
    print(f"{stage}: {step} steps, {n / 1e6:.2f} M parameters, loss {running:.4f}; checkpoint {out / 'last.safetensors'}")
    return 0
