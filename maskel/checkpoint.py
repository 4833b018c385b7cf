"""Checkpoints without pickle: ``<name>.safetensors`` (tensors) + ``<name>.json`` (metadata).

The metadata JSON is also embedded in the safetensors header (key ``maskel_meta``), so a single
file is self-describing and the pair can never disagree after a crash: the tensor file is written
first (atomically), the sidecar JSON second, and readers trust the embedded copy when both exist.
Training state for ``--resume`` uses the same pair format (``state.safetensors|json``): optimiser
tensors go into safetensors under flat keys, everything else (step, param groups, scheduler) into
the JSON metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from maskel import __version__
from maskel.atomic import atomic_write, atomic_write_json
from maskel.errors import BadCheckpoint, MaskelError

FORMAT = "maskel-checkpoint/2"
STATE_FORMAT = "maskel-train-state/1"
META_KEY = "maskel_meta"
STAGES = ("stage1", "stage2", "ddpm", "sr")  # ddpm and sr: maskel.diffusion
REQUIRED_META = ("format", "stage", "resolution", "styles", "pose_channel", "config", "step", "metrics", "data", "version")
MAX_RESOLUTION = 4096
"""Largest model resolution a checkpoint may state (the warm-up pass allocates resolution² tensors)."""
MAX_STYLES = 8
# Shape numbers of the model sections, bounded so a corrupt file cannot ask for gigabytes before any
# weight is compared with its shape.
SHAPE_LIMITS = {("mae", "channels"): (1, 2048), ("mae", "latent_dim"): (1, 4096), ("mae", "res_blocks"): (0, 64),
                ("mae", "context_blocks"): (0, 64), ("mae", "patch"): (1, 64), ("generator", "codebook_size"): (1, 65536),
                ("generator", "codebook_dim"): (1, 4096), ("generator", "context_blocks"): (0, 64)}  # fmt: skip
"""(lowest, highest) per shape number; block counts may be 0 (the upstream-64 preset has none)."""


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``foo``, ``foo.safetensors`` or ``foo.json`` -> (foo.safetensors, foo.json)."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _write_pair(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    st, js = checkpoint_paths(path)
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {META_KEY: json.dumps(meta, sort_keys=True)}
    atomic_write(st, lambda tmp: save_file(flat, tmp, metadata=header))
    atomic_write_json(js, meta)
    return st


def _read_pair(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    st, js = checkpoint_paths(path)
    if not st.exists():
        raise BadCheckpoint(f"{st}: checkpoint not found")
    try:
        tensors = load_file(str(st))
        with safe_open(str(st), framework="pt") as f:
            embedded = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        raise BadCheckpoint(f"{st}: not a safetensors file; pickled checkpoints are refused ({e})") from None
    if embedded is not None:
        try:
            meta = json.loads(embedded)
        except json.JSONDecodeError as e:
            raise BadCheckpoint(f"{st}: unreadable embedded metadata ({e})") from None
    elif js.exists():
        try:
            meta = json.loads(js.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise BadCheckpoint(f"{js}: unreadable checkpoint metadata ({e})") from None
    else:
        raise BadCheckpoint(f"{st}: no metadata (neither embedded nor {js.name})")
    if not isinstance(meta, dict):
        raise BadCheckpoint(f"{st}: checkpoint metadata is not a JSON object")
    return tensors, meta


def make_meta(stage: str, config: dict[str, Any], step: int, metrics: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint metadata from a resolved training config (which carries resolution/styles/pose)."""
    return {
        "format": FORMAT,
        "stage": stage,
        "resolution": int(config["resolution"]),
        "styles": list(config["styles"]),
        "pose_channel": bool(config["pose_channel"]),
        "config": config,
        "step": int(step),
        "metrics": metrics,
        "data": data,
        "version": __version__,
    }


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``<name>.safetensors`` + ``<name>.json`` atomically; returns the safetensors path."""
    validate_meta(meta, str(path))
    return _write_pair(path, tensors, meta)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_meta(meta: dict[str, Any], where: str) -> None:
    """Refuse metadata that is missing, of the wrong type, out of range or self-contradictory,
    before anything is built from it."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise BadCheckpoint(f"{where}: checkpoint metadata lacks {', '.join(missing)}")
    if meta["format"] != FORMAT:
        raise BadCheckpoint(f"{where}: unknown checkpoint format {str(meta['format'])[:40]!r} (expected {FORMAT})")
    if meta["stage"] not in STAGES:
        raise BadCheckpoint(f"{where}: unknown stage {str(meta['stage'])[:40]!r}")
    styles, res, pose = meta["styles"], meta["resolution"], meta["pose_channel"]
    if (not isinstance(styles, list) or not 1 <= len(styles) <= MAX_STYLES
            or not all(isinstance(s, str) and 0 < len(s) <= 32 for s in styles)):  # fmt: skip
        raise BadCheckpoint(f"{where}: checkpoint lists no styles, too many or not as short names: {str(styles)[:80]}")
    if not _is_int(res) or not 8 <= res <= MAX_RESOLUTION:
        raise BadCheckpoint(f"{where}: bad resolution {str(res)[:20]} in the checkpoint metadata (8 to {MAX_RESOLUTION})")
    if not isinstance(pose, bool):
        raise BadCheckpoint(f"{where}: pose_channel must be true or false, got {str(pose)[:20]}")
    config = meta["config"]
    if not isinstance(config, dict):
        raise BadCheckpoint(f"{where}: the checkpoint's config is not an object")
    for key in ("resolution", "styles", "pose_channel"):
        if key in config and config[key] != meta[key]:
            raise BadCheckpoint(f"{where}: metadata {key} {meta[key]!r} contradicts its config's {str(config[key])[:40]}")
    for (section, key), (low, top) in SHAPE_LIMITS.items():
        value = config.get(section, {}).get(key) if isinstance(config.get(section), dict) else None
        values = value if isinstance(value, list) else [value]
        if value is not None and not all(_is_int(v) and low <= v <= top for v in values):
            raise BadCheckpoint(f"{where}: config [{section}] {key} = {str(value)[:40]} is out of range ({low} to {top})")


def load_checkpoint(
    path: str | os.PathLike, stage: str | None = None, resolution: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; refuses pickles, validates metadata and, if given, the stage/resolution."""
    tensors, meta = _read_pair(path)
    where = str(checkpoint_paths(path)[0])
    validate_meta(meta, where)
    if stage is not None and meta["stage"] != stage:
        raise BadCheckpoint(f"{where}: a {meta['stage']} checkpoint, but a {stage} checkpoint is needed")
    if resolution is not None and int(meta["resolution"]) != int(resolution):
        raise BadCheckpoint(f"{where}: trained at {meta['resolution']}px, but this run uses {resolution}px")
    return tensors, meta


# --- training state (resume) -----------------------------------------------------------------
# The learning rate is a pure function of the step (see maskel.train.lr_at), so no scheduler
# object needs saving.


def _flatten_optimizer(prefix: str, sd: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Optimizer state_dict -> tensors under ``prefix.<param>.<name>``; returns the JSON-able rest."""
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{prefix}.{pid}.{name}"] = val
            else:
                scalars.setdefault(str(pid), {})[name] = val
    return {"param_groups": sd["param_groups"], "scalars": scalars, "ids": [int(k) for k in sd["state"]]}


def _unflatten_optimizer(prefix: str, info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {pid: dict(info["scalars"].get(str(pid), {})) for pid in info["ids"]}
    lead = prefix + "."
    for key, val in tensors.items():
        if key.startswith(lead):
            pid, name = key[len(lead) :].split(".", 1)
            state[int(pid)][name] = val
    return {"state": state, "param_groups": info["param_groups"]}


def save_state(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra: dict[str, Any],
) -> Path:
    """Everything --resume needs: module weights and buffers (EMA codebooks included), optimiser
    tensors and ``extra`` (step, seed, best metric...)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, mod in modules.items():
        for k, v in mod.state_dict().items():
            tensors[f"model.{name}.{k}"] = v
    opt_info = {name: _flatten_optimizer(f"optim.{name}", opt.state_dict(), tensors) for name, opt in optimizers.items()}
    meta = {"format": STATE_FORMAT, "optimizers": opt_info, "extra": extra, "version": __version__}
    return _write_pair(path, tensors, meta)


def load_state(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, Any]:
    """Restore what save_state wrote into the given objects; returns ``extra``."""
    tensors, meta = _read_pair(path)
    if meta.get("format") != STATE_FORMAT:
        raise MaskelError(f"{checkpoint_paths(path)[0]}: not a training-state file")
    for name, mod in modules.items():
        lead = f"model.{name}."
        sd = {k[len(lead) :]: v for k, v in tensors.items() if k.startswith(lead)}
        try:
            mod.load_state_dict(sd)
        except RuntimeError as e:
            raise MaskelError(f"training state does not match the model ({str(e).splitlines()[0]})") from None
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(f"optim.{name}", meta["optimizers"][name], tensors))
    return meta["extra"]
