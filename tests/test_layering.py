"""Layering (DESIGN.md section 1): maskel never imports render; render plugs in from above
(maskel.plugins), and the anny rig's bone -> joint map is the same on both sides of Blender."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests._server import REPO

MASKEL = REPO / "maskel"


def test_no_maskel_module_imports_render() -> None:
    offenders = []
    for path in sorted(MASKEL.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])  # fmt: skip
            offenders += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names if n == "render" or n.startswith("render.")]
    assert not offenders, offenders


def test_importing_every_maskel_module_loads_no_render() -> None:
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for p in MASKEL.rglob("*.py")
        if p.name != "__main__.py"
    )  # fmt: skip
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'render' or m.startswith('render.'))\n"
        "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_render_plugs_in_its_providers_and_commands() -> None:
    from maskel.plugins import load_plugins

    plugins = load_plugins()
    assert plugins.mannequin is not None and plugins.skeleton is not None and not plugins.missing
    assert {"demo", "mannequin"} <= set(plugins.commands)
    assert load_plugins("no_such_plugin_module").missing


def test_the_anny_joint_map_agrees_with_the_addon_makehuman_table() -> None:
    """render.body.JOINT_MAP is the definition; the add-on's table (it cannot import render) must
    pick the same bone end first for every joint."""
    from blender_addon.core.rigs import MAKEHUMAN
    from render.body import JOINT_MAP

    for joint, (bone, end) in JOINT_MAP.items():
        assert MAKEHUMAN[joint][0] == f"{bone}:{end}", (joint, MAKEHUMAN[joint], JOINT_MAP[joint])
