"""Training configuration: the TOML presets in ``maskel/configs``, command-line overrides, and the
values the data decides (styles, pose channel, label count, and stage 2's latent shape)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from maskel.data.datasets import PairedData
from maskel.errors import MaskelError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TWO_STAGE_KEYS = ("resolution", "data", "mae", "generator", "discriminator", "train", "stage1", "stage2")


def presets(prefix: str = "") -> list[str]:
    """Preset names (file stems in CONFIG_DIR) starting with ``prefix``."""
    return sorted(p.stem for p in CONFIG_DIR.glob(f"{prefix}*.toml"))


def read_preset(name_or_path: str, required: tuple[str, ...], kind: str | None = None) -> dict[str, Any]:
    """A preset name (``cpu-256``, ``ddpm-tiny``, ...) or a TOML path, parsed and checked: its
    ``kind`` key when one is asked for (the diffusion presets are ``ddpm-*`` / ``sr-*`` of that
    kind), then the ``required`` keys; ``name`` defaults to the file's stem."""
    path = CONFIG_DIR / f"{name_or_path}.toml"
    if not path.exists():
        path = Path(name_or_path)
    if not path.is_file():
        shown = presets(f"{kind}-" if kind else "")
        raise MaskelError(f"unknown {kind + ' ' if kind else ''}config {name_or_path!r} (presets: {', '.join(shown)}, or a .toml path)")
    try:
        cfg = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise MaskelError(f"{path}: invalid TOML ({e})") from None
    if kind is not None and cfg.get("kind") != kind:
        raise MaskelError(f"{path}: not a {kind} config (kind = {cfg.get('kind')!r})")
    for key in required:
        if key not in cfg:
            raise MaskelError(f"{path}: missing {key if key == 'resolution' else f'[{key}]'}")
    cfg.setdefault("name", path.stem)
    return cfg


def load_config(name_or_path: str) -> dict[str, Any]:
    """A two-stage preset (tiny, cpu-256, ...) or a path to a TOML file."""
    return read_preset(name_or_path, TWO_STAGE_KEYS)


def apply_overrides(cfg: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``SECTION.KEY=VALUE`` settings (VALUE in TOML syntax, a bare word taken as a string) applied
    to a copy of the config; the section must exist, the key may be new."""
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for item in overrides:
        path, sep, raw = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise MaskelError(f"--set takes SECTION.KEY=VALUE, not {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node: Any = cfg
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                raise MaskelError(f"--set {item}: the config has no [{'.'.join(keys[:-1])}] section")
            node[k] = dict(node[k])
            node = node[k]
        node[keys[-1]] = value
    return cfg


def resolve_config(cfg: dict[str, Any], data: PairedData, stage1_meta: dict[str, Any] | None) -> dict[str, Any]:
    """Fill in what the data decides (styles, pose channel, label count); stage 2 takes the latent
    shape ([mae]) from its stage-1 checkpoint."""
    cfg = dict(cfg)
    cfg["styles"] = list(data.styles)
    cfg["pose_channel"] = bool(cfg["data"].get("pose_channel", True)) and data.has_joints
    cfg["num_labels"] = data.num_labels
    if stage1_meta is not None:
        if stage1_meta["styles"] != cfg["styles"]:
            raise MaskelError(f"the stage-1 checkpoint was trained on styles {stage1_meta['styles']}, the data has {cfg['styles']}")
        cfg["mae"] = stage1_meta["config"]["mae"]
    return cfg
