"""Stage 2: silhouette (+ limb maps when the rig is known) -> X-ray, drawn at full resolution.

mask encoder (fully convolutional, down to the stage-1 latent grid, 1/p of the image, dilated
context blocks at the bottom) -> latent trained to land on the frozen stage-1 latent of the true
X-ray -> vector quantiser (``maskel.models.vq``) -> a decoder of the stage-1 decoder's shape with
skip connections from the mask encoder, so it draws at the input's own resolution with the
silhouette's exact outline. With ``init_from_stage1`` the decoder starts as the stage-1 decoder
(skips at zero); on phantom v4 that start cost 0.009 SSIM inside the body against training it
from scratch, which in turn drew less sharply (README, stage-2 ablation). Output in [0, 1] per
style, multiplied by the mask dilated by one pixel (air is black; this also keeps training from
collapsing to an all-black image). An optional bone-label head (logits) runs only when labels are
asked for.

With ``radiograph_from_dxa`` the radiograph is composed the way the phantom's DRR makes it: the
decoder's radiograph channel becomes the soft-tissue image ``r0`` and the bone comes from the
drawn DXA ``d`` (areal bone mineral) through Beer-Lambert, ``R = 1 - (1 - r0) exp(-beta d)``
with one learned ``beta`` (about RADIOGRAPH_GAIN x 1.1 cm2/g x DXA full scale = 0.4 for the
phantom), so the radiograph's bones are exactly as sharp as the DXA style's and the two agree.

With ``quantize = false`` and ``skips = true`` and no stage 1 this is a plain U-Net (the pix2pix
baseline); with ``skips = false``, no residual blocks and 64² it behaves like the published
MaSkel code (the other baseline). Fully convolutional: trains on crops, runs on any frame whose
sides are multiples of p.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from maskel.data.joints import LIMB_MIRROR, LIMBS
from maskel.models.blocks import ConvEncoder, XrayDecoder
from maskel.models.mae import XrayMAE, latent_shape, mae_kwargs
from maskel.models.vq import build_quantizer

LIMB_CHANNELS = len(LIMBS)
BONE_BETA_INIT = 0.4


class MaskelGenerator(nn.Module):
    """``gen(mask, limbs)`` -> {"xray": (B, S, H, W) in [0, 1][, "labels": (B, K, H, W) logits]}."""

    def __init__(
        self,
        styles: list[str],
        pose_channel: bool,
        num_labels: int,
        channels: list[int],
        latent_dim: int,
        quantizer: nn.Module | None,
        res_blocks: int = 1,
        context_blocks: int = 4,
        skips: bool = True,
        bottleneck_skip: bool = False,
        radiograph_from_dxa: bool = False,
    ):
        super().__init__()
        self.styles, self.pose_channel = list(styles), pose_channel
        self.bone_beta = None
        if radiograph_from_dxa:
            if not {"radiograph", "dxa"} <= set(styles):
                raise ValueError(f"radiograph_from_dxa needs both the radiograph and dxa styles, not {styles}")
            self.bone_beta = nn.Parameter(torch.tensor(BONE_BETA_INIT))
        self.patch = 2 ** (len(channels) - 1)
        self.in_channels = 1 + (LIMB_CHANNELS if pose_channel else 0)
        self.encoder = ConvEncoder(self.in_channels, channels, latent_dim, res_blocks, context_blocks)
        self.quantizer = quantizer
        self.skips, self.bottleneck_skip = skips, bottleneck_skip
        self.decoder = XrayDecoder(latent_dim, channels, len(styles), res_blocks, skip_channels=channels[:-1] if skips else None,
                                   bottleneck_channels=channels[-1] if bottleneck_skip else None)  # fmt: skip
        self.label_head = nn.Conv2d(channels[0], num_labels, 1) if num_labels > 0 else None

    def condition(self, mask: torch.Tensor, limbs: torch.Tensor | None) -> torch.Tensor:
        """The encoder's input: the mask, then the limb maps (all zeros when the rig is unknown,
        as seen in training for samples whose joints were dropped)."""
        if not self.pose_channel:
            return mask
        if limbs is None:
            limbs = mask.new_zeros(mask.shape[0], LIMB_CHANNELS, *mask.shape[-2:])
        return torch.cat([mask, limbs], dim=1)

    def forward_encoder(self, cond: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """-> (latent, the encoder's features of every level, finest first, the latent's own last)."""
        if cond.shape[-1] % self.patch or cond.shape[-2] % self.patch:
            raise ValueError(f"input size {tuple(cond.shape[-2:])} is not a multiple of {self.patch}")
        return self.encoder(cond)

    def quantize(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """-> (quantised latent, code indices, commitment loss); identity without a quantiser."""
        if self.quantizer is None:
            return latent, None, latent.new_zeros(())
        with torch.autocast(latent.device.type, enabled=False):  # codebook distances and EMA in float32
            q, indices, commit = self.quantizer(latent.float())
        return q.to(latent.dtype), indices, commit.sum()

    def forward_decoder(self, q: torch.Tensor, features: list[torch.Tensor], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantised latent, the encoder's features) -> (X-ray gated by the 1-px dilated mask,
        final features). The decoder takes the skips it was built with."""
        xray, final = self.decoder(q, features[:-1] if self.skips else None, features[-1] if self.bottleneck_skip else None)
        xray = xray * F.max_pool2d(mask, 3, stride=1, padding=1)
        if self.bone_beta is not None:
            r, d = self.styles.index("radiograph"), self.styles.index("dxa")
            channels = list(xray.unbind(dim=1))
            channels[r] = 1.0 - (1.0 - channels[r]) * torch.exp(-self.bone_beta * channels[d])
            xray = torch.stack(channels, dim=1)
        return xray, final

    def forward(self, mask: torch.Tensor, limbs: torch.Tensor | None = None, labels: bool = False, internals: bool = False) -> dict[str, Any]:
        cond = self.condition(mask, limbs)
        latent, levels = self.forward_encoder(cond)
        q, indices, commit = self.quantize(latent)
        xray, features = self.forward_decoder(q, levels, mask)
        out: dict[str, Any] = {"xray": xray}
        if labels and self.label_head is not None:
            out["labels"] = self.label_head(features)
        if internals:
            out.update(latent=latent, commit=commit, indices=indices, cond=cond)
        return out

    def forward_mirror_average(
        self, mask: torch.Tensor, limbs: torch.Tensor | None = None, labels: bool = False, which: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """The X-ray averaged over the character and its mirror image: both drawn in one batch (the
        mirror's mask flipped, each limb map in its mirror partner's channel), the mirror's X-ray
        flipped back. Training flips half the samples, so both are drawings of the same body and
        their mean cancels part of each one's error (README, 'The default model', for what it
        buys and costs). ``which`` (B,) bool picks the samples to average (default: all); the
        others are drawn once. Bone labels come from the unmirrored pass."""
        b = mask.shape[0]
        pick = torch.arange(b, device=mask.device) if which is None else which.to(mask.device).nonzero()[:, 0]
        cond_limbs = None
        if limbs is not None:
            cond_limbs = torch.cat([limbs, limbs[pick][:, torch.as_tensor(LIMB_MIRROR)].flip(-1)])
        both = self(torch.cat([mask, mask[pick].flip(-1)]), cond_limbs, labels=labels)
        xray = both["xray"][:b].clone()
        xray[pick] = 0.5 * (xray[pick] + both["xray"][b:].flip(-1))
        out: dict[str, Any] = {"xray": xray}
        if "labels" in both:
            out["labels"] = both["labels"][:b]
        return out

    def init_from_stage1(self, mae: XrayMAE) -> None:
        """Start the decoder as the stage-1 decoder (the skip projections stay at zero)."""
        missing, unexpected = self.decoder.load_state_dict(mae.decoder.state_dict(), strict=False)
        if unexpected or any(not k.startswith(("skip_proj.", "bottleneck_proj.")) for k in missing):
            raise ValueError("the stage-1 decoder does not match this generator's decoder")


def build_generator(config: dict[str, Any], training: bool = False) -> MaskelGenerator:
    """A stage-2 generator from a resolved training config (``styles``, ``pose_channel``,
    ``num_labels``, ``[mae]`` for the latent and the encoder/decoder shape, ``[generator]``). ``training`` picks the
    library quantiser (EMA codebook updates) instead of the inference lookup."""
    g = config["generator"]
    dim, _ = latent_shape(config)
    arch = mae_kwargs(config)  # the decoder is the stage-1 decoder's shape
    quantize = bool(g.get("quantize", True))
    return MaskelGenerator(
        styles=list(config["styles"]),
        pose_channel=bool(config["pose_channel"]),
        num_labels=int(config.get("num_labels", 0)) if g.get("label_head", True) else 0,
        channels=arch["channels"],
        latent_dim=dim,
        quantizer=build_quantizer(dim, g, training) if quantize else None,
        res_blocks=arch["res_blocks"],
        context_blocks=int(g.get("context_blocks", 4)),
        skips=bool(g.get("skips", True)),
        bottleneck_skip=bool(g.get("bottleneck_skip", False)),
        radiograph_from_dxa=bool(g.get("radiograph_from_dxa", False)),
    )
