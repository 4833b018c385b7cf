"""The one seam through which the composition roots (the CLI, ``serve.run``) get what lives above
maskel: render/'s mannequin and skeleton providers and its commands (``demo``, ``mannequin``).

maskel's modules never import render (tests/test_layering.py). A plugin is a module, named in
``$MASKEL_PLUGINS`` (comma-separated; default ``render.plugin``), that may define ``mannequin()``
-> dict, ``skeleton(joints)`` -> dict and ``COMMANDS`` {name: (help, main(argv) -> int)}; a
missing one is no error: its endpoints answer 503 and its commands say what to install.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PLUGINS = "render.plugin"


@dataclass
class Plugins:
    mannequin: Callable[[], dict[str, Any]] | None = None
    skeleton: Callable[[dict[str, list[float]]], dict[str, Any]] | None = None
    commands: dict[str, tuple[str, Callable[[list[str]], int]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # "module: why", for the messages


def load_plugins(names: str | None = None) -> Plugins:
    names = os.environ.get("MASKEL_PLUGINS", DEFAULT_PLUGINS) if names is None else names
    found = Plugins()
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            found.missing.append(f"{name}: {e}")
            continue
        found.mannequin = getattr(module, "mannequin", found.mannequin)
        found.skeleton = getattr(module, "skeleton", found.skeleton)
        found.commands.update(getattr(module, "COMMANDS", {}))
    return found
