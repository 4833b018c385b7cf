"""Where the generator checkpoint comes from when no flag names one.

Order: ``--checkpoint`` > ``$MASKEL_CHECKPOINT`` > the user cache
(``$XDG_CACHE_HOME/maskel/default.safetensors``, ``~/.cache/maskel/default.safetensors``) > the
package's own ``maskel/weights/default.safetensors``. A checkpoint is a ``.safetensors`` file with a
``.json`` metadata file beside it; a directory stands for the ``last.safetensors`` (or
``default.safetensors``) inside it, which is what ``python -m maskel.train`` writes.
"""

from __future__ import annotations

import os
from pathlib import Path

from maskel import MaskelError

ENV_VAR = "MASKEL_CHECKPOINT"
DEFAULT_NAME = "default.safetensors"

HOW_TO_GET = (
    "no MaSkel checkpoint found (looked at --checkpoint, $MASKEL_CHECKPOINT, "
    "~/.cache/maskel/default.safetensors, maskel/weights/default.safetensors); make data with "
    "`python -m render.dataset --n 2000 --size 64 --out data`, train with "
    "`python -m maskel.train stage1 --config tiny --data data --out runs/s1` then "
    "`python -m maskel.train stage2 --config tiny --data data --out runs/s2 --stage1 runs/s1/last.safetensors`, "
    "and pass --checkpoint runs/s2/last.safetensors (or copy it and its .json to ~/.cache/maskel/default.*)"
)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/maskel`` or ``~/.cache/maskel``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "maskel"


def package_weights_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"


def _resolve_named(path: str | os.PathLike, source: str) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        for name in ("last.safetensors", DEFAULT_NAME):
            if (p / name).is_file():
                return p / name
        raise MaskelError(f"{source} {p} is a directory without last.safetensors or {DEFAULT_NAME}")
    if not p.is_file():
        raise MaskelError(f"{source} {p} does not exist")
    return p


def find_checkpoint(explicit: str | os.PathLike | None = None) -> Path:
    """The checkpoint to load; raises MaskelError (with how to get one) when there is none.

    A path given explicitly (flag or environment) must exist: silently falling back to another
    model would be worse than an error.
    """
    if explicit:
        return _resolve_named(explicit, "checkpoint")
    env = os.environ.get(ENV_VAR)
    if env:
        return _resolve_named(env, f"${ENV_VAR}")
    for candidate in (user_cache_dir() / DEFAULT_NAME, package_weights_dir() / DEFAULT_NAME):
        if candidate.is_file():
            return candidate
    raise MaskelError(HOW_TO_GET)
