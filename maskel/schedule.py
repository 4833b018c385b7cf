"""What a training step's learning rate and RNG seed are: pure functions of the step, so a resumed
run needs no scheduler or RNG state (shared by the two stages and the diffusion parts)."""

from __future__ import annotations

import hashlib
import math


def lr_at(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10% of ``base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global torch seed of one step of one process."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{step}:{rank}".encode()).digest()[:8], "big") >> 1
