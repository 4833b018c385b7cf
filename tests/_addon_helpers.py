"""Helpers for the add-on tests: locating Blender / the bpy wheel, running scenario scripts in them,
and a small box-figure mannequin JSON (used when the server cannot build the anny mannequin)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "blender"
RESULT_PREFIX = "MASKEL_RESULT "


def blender_exe() -> str | None:
    return os.environ.get("MASKEL_BLENDER") or shutil.which("blender")


BPY_VENVS = {"bpy": (".venv-bpy", "MASKEL_BPY_PYTHON"), "bpy5": (".venv-bpy5", "MASKEL_BPY5_PYTHON")}
"""Kind -> (venv in the checkout, environment variable overriding its python): the bpy 4.5 and 5.0 wheels."""


def bpy_python(kind: str = "bpy") -> str | None:
    venv, var = BPY_VENVS[kind]
    p = os.environ.get(var) or str(REPO / venv / "bin" / "python")
    return p if Path(p).is_file() else None


def blender_env(home: Path) -> dict[str, str]:
    """Environment that keeps Blender's user config, scripts and extensions inside ``home``."""
    env = dict(os.environ)
    for var, sub in (("BLENDER_USER_CONFIG", "config"), ("BLENDER_USER_SCRIPTS", "scripts"),
                     ("BLENDER_USER_DATAFILES", "datafiles"), ("BLENDER_USER_EXTENSIONS", "extensions")):  # fmt: skip
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["HOME"] = str(home)
    (home / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(home / "tmp")  # so a test can see what was left in the temporary folder
    env.pop("PYTHONPATH", None)
    return env


def repo_python(home: Path) -> str:
    """A Python command that imports this checkout's maskel (whatever the editable install points at),
    for servers the add-on starts from inside Blender, whose environment has no PYTHONPATH."""
    path = home / "repo_python"
    path.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" "$@"\n')
    path.chmod(0o755)
    return str(path)


def run_in_blender(kind: str, script: str, args: list[str], home: Path, blend: str | None = None,
                   timeout: float = 300) -> subprocess.CompletedProcess:  # fmt: skip
    """Run tests/blender/<script> in Debian's blender (kind 'blender') or a bpy wheel (kind 'bpy' / 'bpy5')."""
    path = str(SCRIPTS / script) if not os.path.isabs(script) else script
    if kind == "blender":
        cmd = [blender_exe(), "-b", *([blend] if blend else []), "--factory-startup", "--python-exit-code", "1",
               "-P", path, "--", *args]  # fmt: skip
    else:
        cmd = [bpy_python(kind), path, "--", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=blender_env(home), cwd=home)


def run_in_blender_ui(script: str, args: list[str], home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run tests/blender/<script> in Debian's blender with its real UI on a virtual X display (xvfb-run).

    Blender opens an empty .blend made first (a file on the command line skips the splash screen).
    """
    env = blender_env(home)
    blend = home / "empty.blend"
    subprocess.run([blender_exe(), "-b", "--factory-startup", "--python-expr",
                    f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})"],
                   capture_output=True, text=True, timeout=120, env=env, cwd=home, check=True)  # fmt: skip
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", blender_exe(), str(blend), "--factory-startup",
           "-P", str(SCRIPTS / script), "--", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=home)


def results(proc: subprocess.CompletedProcess) -> dict:
    """The JSON objects a scenario printed (``MASKEL_RESULT {...}`` lines), merged."""
    out: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            out.update(json.loads(line[len(RESULT_PREFIX) :]))
    return out


def box_mannequin() -> dict:
    """A 1.75 m box figure in the mannequin JSON format: one skinned box per bone, MakeHuman bone names."""
    bones = [  # name, parent, head, tail, half-width (x, y)
        ("root", None, (0, 0, 0.95), (0, 0, 1.05), (0.16, 0.10)),
        ("spine03", "root", (0, 0, 1.05), (0, 0, 1.25), (0.15, 0.09)),
        ("spine01", "spine03", (0, 0, 1.25), (0, 0, 1.45), (0.18, 0.10)),
        ("neck01", "spine01", (0, 0, 1.45), (0, 0, 1.55), (0.05, 0.05)),
        ("head", "neck01", (0, 0, 1.55), (0, 0, 1.75), (0.09, 0.10)),
    ]
    for s, x in (("L", 1), ("R", -1)):
        bones += [
            (f"upperarm01.{s}", "spine01", (0.2 * x, 0, 1.43), (0.2 * x, 0, 1.15), (0.045, 0.045)),
            (f"lowerarm01.{s}", f"upperarm01.{s}", (0.2 * x, 0, 1.15), (0.2 * x, 0, 0.9), (0.04, 0.04)),
            (f"wrist.{s}", f"lowerarm01.{s}", (0.2 * x, 0, 0.9), (0.2 * x, 0, 0.75), (0.035, 0.02)),
            (f"upperleg01.{s}", "root", (0.09 * x, 0, 0.95), (0.09 * x, 0, 0.5), (0.07, 0.07)),
            (f"lowerleg01.{s}", f"upperleg01.{s}", (0.09 * x, 0, 0.5), (0.09 * x, 0, 0.08), (0.05, 0.05)),
            (f"foot.{s}", f"lowerleg01.{s}", (0.09 * x, 0, 0.08), (0.09 * x, -0.15, 0.02), (0.045, 0.03)),
        ]
    verts, faces, weights = [], [], {}
    quads = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))
    for name, _, head, tail, (hx, hy) in bones:
        base = len(verts)
        zlo, zhi = min(head[2], tail[2]), max(head[2], tail[2])
        ylo, yhi = min(head[1], tail[1]) - hy, max(head[1], tail[1]) + hy
        cx = head[0]
        for x in (cx - hx, cx + hx):
            for y in (ylo, yhi):
                for z in (zlo - 0.01, zhi + 0.01):
                    verts.append([x, y, z])
        for q in quads:
            faces.append([base + q[0], base + q[1], base + q[2]])
            faces.append([base + q[0], base + q[2], base + q[3]])
        weights[name] = [[base + i, 1.0] for i in range(8)]
    joint_map = {
        "pelvis": "root:head", "spine": "spine03:head", "chest": "spine01:head", "neck": "neck01:head",
        "head": "head:head", "head_top": "head:tail",
    }  # fmt: skip
    for side, s in (("left", "L"), ("right", "R")):
        joint_map.update({
            f"{side}_shoulder": f"upperarm01.{s}:head", f"{side}_elbow": f"lowerarm01.{s}:head",
            f"{side}_wrist": f"wrist.{s}:head", f"{side}_hand": f"wrist.{s}:tail",
            f"{side}_hip": f"upperleg01.{s}:head", f"{side}_knee": f"lowerleg01.{s}:head",
            f"{side}_ankle": f"foot.{s}:head", f"{side}_foot": f"foot.{s}:tail",
        })  # fmt: skip
    return {
        "format": "maskel-mannequin/1", "units": "m", "up": "Z", "vertices": verts, "faces": faces,
        "bones": [{"name": n, "parent": p, "head": list(h), "tail": list(t), "roll": 0.0} for n, p, h, t, _ in bones],
        "weights": weights, "joint_map": joint_map,
    }  # fmt: skip
