"""Layering (DESIGN.md section 1): maskel never imports render; render plugs in from above
(maskel.plugins); the joint contract is one file that both sides of Blender read."""

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


def test_the_addon_archive_carries_the_contract_it_reads(tmp_path) -> None:
    """maskel/data/contract.json is the one definition of styles, joints and the MakeHuman joint
    points: the built add-on holds that very file and, unpacked away from the source tree, reads it."""
    import importlib.util
    import zipfile

    from maskel.data.contract import CONTRACT_FILE
    from maskel.data.joints import CANONICAL_JOINTS, MAKEHUMAN_RIG
    from maskel.data.manifest import STYLES

    proc = subprocess.run([sys.executable, str(REPO / "blender_addon" / "build.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    with zipfile.ZipFile(proc.stdout.strip()) as z:
        assert z.read("maskel_xray/core/contract.json") == CONTRACT_FILE.read_bytes()
        z.extractall(tmp_path / "addons")
    spec = importlib.util.spec_from_file_location("unpacked_contract", tmp_path / "addons/maskel_xray/core/contract.py")
    contract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(contract)
    assert contract.contract_file() == (tmp_path / "addons/maskel_xray/core/contract.json").resolve()
    assert tuple(contract.STYLES) == STYLES and contract.CANONICAL_JOINTS == CANONICAL_JOINTS
    assert contract.MAKEHUMAN_RIG == {j: f"{b}:{e}" for j, (b, e) in MAKEHUMAN_RIG.items()}


def test_a_makehuman_rig_resolves_to_the_contract_points_before_its_fallbacks() -> None:
    """A MakeHuman armature that has every candidate bone (contract and fallback ends alike) gives
    each joint at the point the training data's joints are."""
    from blender_addon.core import rigs
    from maskel.data.joints import MAKEHUMAN_RIG

    bones = sorted({c.rpartition(":")[0] for cands in rigs.MAKEHUMAN.values() for c in cands})
    rig, joints = rigs.detect_rig(bones)
    assert rig == "makehuman" and joints == MAKEHUMAN_RIG
