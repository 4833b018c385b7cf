"""How much of the mask encoder's latent a stage-2 checkpoint's codebook keeps: on held-out masks
(with their joints), the energy of (latent - quantised latent) over the latent's, the number of
codes used and the codebook's perplexity.

    python benchmarks/codebook_fidelity.py --checkpoint CKPT [CKPT ...] --data DIR [--limit 40]

The stage-2 decoder reads only the quantised latent and the skips, so a codebook that loses most
of the latent (the shipped cpu-256: its 32-dim codebook space loses 85 %) leaves the latent
target nothing to pass on (README: stage-2 ablation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maskel.data.datasets import find_refs  # noqa: E402
from maskel.evaluate import load_sample  # noqa: E402
from maskel.infer import Predictor  # noqa: E402


def fidelity(checkpoint: Path, samples: list[dict]) -> dict[str, float]:
    pred = Predictor(checkpoint, device="cpu", warmup=False)
    model = pred.model
    if model.quantizer is None:
        raise SystemExit(f"{checkpoint}: this generator has no codebook")
    lost, codes = [], []
    for sample in samples:
        prepared = pred.prepare(sample["mask"], sample["joints"])
        limbs = torch.from_numpy(prepared.limb_maps)[None] if prepared.limb_maps is not None else None
        with torch.no_grad():
            latent, _ = model.forward_encoder(model.condition(torch.from_numpy(prepared.model_mask)[None, None], limbs))
            q, indices, _ = model.quantize(latent)
        lost.append(float((latent - q).pow(2).sum() / latent.pow(2).sum()))
        codes.append(indices.flatten())
    used = torch.cat(codes)
    counts = torch.bincount(used).float()
    p = counts[counts > 0] / counts.sum()
    return {"latent_lost": sum(lost) / len(lost), "codes_used": int((counts > 0).sum()),
            "perplexity": float(torch.exp(-(p * p.log()).sum()))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=40)
    a = ap.parse_args()
    _, refs, styles, _ = find_refs(a.data)
    samples = [load_sample(r, styles) for r in refs[: a.limit]]
    print(f"{'checkpoint':60s} {'latent lost':>11s} {'codes used':>10s} {'perplexity':>10s}")
    for ck in a.checkpoint:
        f = fidelity(ck, samples)
        print(f"{str(ck):60s} {f['latent_lost']:11.3f} {f['codes_used']:10d} {f['perplexity']:10.1f}")


if __name__ == "__main__":
    main()
