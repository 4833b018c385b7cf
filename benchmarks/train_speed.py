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

from maskel.models import build_generator, build_mae
from maskel.models.discriminator import build_discriminator
from maskel.models.generator import LIMB_CHANNELS
from maskel.models.losses import discriminator_loss, generator_loss
from maskel.train import load_config


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
    cfg.update(styles=["radiograph", "dxa"], pose_channel=bool(cfg["data"].get("pose_channel", True)), num_labels=200)
    r = int(cfg["stage2"].get("crop") or cfg["resolution"])
    mask = (torch.rand(batch, 1, r, r, device=device) > 0.5).float()
    b = {"mask": mask, "pose": torch.rand(batch, LIMB_CHANNELS, r, r, device=device), "xray": torch.rand(batch, 2, r, r, device=device) * mask,
         "labels": torch.randint(0, 200, (batch, r, r), device=device)}  # fmt: skip
    mae = build_mae(cfg).to(device)
    opt = torch.optim.AdamW(mae.parameters(), lr=1e-4)

    def s1() -> None:
        loss = mae(b["xray"])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    t1 = _time(s1, steps)
    mae.requires_grad_(False).eval()
    gen = build_generator(cfg, training=True).to(device)
    disc = build_discriminator(cfg, gen.in_channels).to(device)
    use_mae = mae if float(cfg["stage2"]["loss"].get("latent", 0)) > 0 else None
    og, od = torch.optim.AdamW(gen.parameters(), lr=1e-4), torch.optim.AdamW(disc.parameters(), lr=1e-4)

    def s2() -> None:
        w = cfg["stage2"]["loss"]
        loss, _, pred, cond = generator_loss(gen, use_mae, disc, b, w, use_adv=float(w.get("adv", 0)) > 0)
        og.zero_grad()
        loss.backward()
        og.step()
        d = discriminator_loss(disc, b["xray"], pred, cond)
        od.zero_grad()
        d.backward()
        od.step()

    t2 = _time(s2, steps)
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
