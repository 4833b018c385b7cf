"""Training speed of both stages of the presets on random data, at each preset's crop size.

    python benchmarks/train_speed.py [--steps 3] [--batch 8] [--device cpu] [--presets cpu-256 pix2pix-256 upstream-64]

One optimiser step = forward + backward + AdamW update; stage 2 includes the frozen stage-1
encoder (latent target), the label head when the preset trains it, and the GAN (generator and
discriminator steps). Prints the median seconds per step over ``--steps`` steps after one
warm-up step, images/s and parameter counts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from maskel.config import load_config
from maskel.data.manifest import STYLES
from maskel.models.generator import LIMB_CHANNELS
from maskel.stages import Placement, Stage1, Stage2


def _params(m: torch.nn.Module) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e6


def _time(step, n: int) -> float:
    step()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(preset: str, batch: int, steps: int, device: torch.device) -> list[tuple]:
    cfg = load_config(preset)
    cfg.update(styles=list(STYLES), pose_channel=bool(cfg["data"].get("pose_channel", True)), num_labels=200)
    r = int(cfg["stage2"].get("crop") or cfg["resolution"])
    mask = (torch.rand(batch, 1, r, r, device=device) > 0.5).float()
    b = {"mask": mask, "pose": torch.rand(batch, LIMB_CHANNELS, r, r, device=device), "xray": torch.rand(batch, 2, r, r, device=device) * mask,
         "labels": torch.randint(0, 200, (batch, r, r), device=device)}  # fmt: skip
    place = Placement(device)
    stage1 = Stage1(cfg, place)
    t1 = _time(lambda: stage1.step(b, 0), steps)
    mae = stage1.model.requires_grad_(False).eval()
    stage2 = Stage2(cfg, place, mae)
    t2 = _time(lambda: stage2.step(b, int(cfg["stage2"]["loss"]["adv_warmup"])), steps)  # with the adversarial term
    gen, disc = stage2.model, stage2.disc
    return [
        (preset, "stage1 (MAE)", r, batch, _params(mae), t1, batch / t1),
        (preset, "stage2 (gen+D)", r, batch, _params(gen) + _params(disc), t2, batch / t2),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["cpu-256", "pix2pix-256", "upstream-64"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    print(f"device {dev}, torch threads {torch.get_num_threads()}, median of {args.steps} steps after 1 warm-up")
    print(f"{'preset':<13}{'stage':<16}{'res':>5}{'batch':>7}{'params M':>10}{'s/step':>9}{'img/s':>8}")
    for p in args.presets:
        for row in bench(p, args.batch, args.steps, dev):
            print(f"{row[0]:<13}{row[1]:<16}{row[2]:>5}{row[3]:>7}{row[4]:>10.2f}{row[5]:>9.3f}{row[6]:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
