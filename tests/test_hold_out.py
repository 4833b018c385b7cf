"""Holding pose families and a yaw range out of training, and `maskel eval` scoring them apart."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from maskel import MaskelError
from maskel.checkpoint import checkpoint_paths
from maskel.data.datasets import HoldOut, SampleRef, find_refs, load_paired

REPO = Path(__file__).resolve().parents[1]


def _ref(kind: str | None, yaw: float | None) -> SampleRef:
    return SampleRef(id="x", mask=Path("m.png"), xrays={}, pose_kind=kind, yaw_deg=yaw)


def test_hold_out_matches_kinds_and_a_wrapping_yaw_range():
    back = HoldOut(("sitting",), (150.0, 210.0))
    assert back.holds(_ref("sitting", 0.0)) and back.holds(_ref("walking", 180.0))
    assert not back.holds(_ref("walking", 149.9)) and not back.holds(_ref("walking", 210.0))
    front = HoldOut((), (330.0, 30.0))  # wraps through 0
    assert front.holds(_ref("walking", 350.0)) and front.holds(_ref("walking", 10.0)) and front.holds(_ref("walking", -10.0))
    assert not front.holds(_ref("walking", 180.0))
    assert not HoldOut() and HoldOut.from_config(back.to_config()) == back
    with pytest.raises(MaskelError, match="hold_out"):
        HoldOut.from_config({"yaw_deg": "back"})


def test_load_paired_leaves_the_held_out_samples_out(tiny_dataset: Path):
    _, refs, _, _ = find_refs(tiny_dataset)
    kind = collections.Counter(r.pose_kind for r in refs).most_common(1)[0][0]
    hold = HoldOut((kind,), (90.0, 270.0))
    kept = {r.id for r in refs if not hold.holds(r)}
    assert 0 < len(kept) < len(refs)
    data = load_paired(tiny_dataset, 32, progress=False, hold_out=hold)
    assert {s.id for s in data.samples} == kept
    with pytest.raises(MaskelError, match="leaves no sample"):
        load_paired(tiny_dataset, 32, progress=False, hold_out=HoldOut((), (0.0, 360.0)))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_a_hold_out_run_is_recorded_and_scored_apart(tiny_dataset: Path, tmp_path: Path):
    _, refs, _, _ = find_refs(tiny_dataset)
    kind = collections.Counter(r.pose_kind for r in refs).most_common(1)[0][0]
    hold = HoldOut((kind,), (150.0, 210.0))
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    hold_args = ["--hold-out-poses", kind, "--hold-out-yaw", "150:210", "--steps", "2"]
    proc = _run("-m", "maskel.train", "stage1", "--config", "tiny", "--data", str(tiny_dataset), "--out", str(s1), *hold_args)
    assert proc.returncode == 0, proc.stderr
    proc = _run("-m", "maskel.train", "stage2", "--config", "tiny", "--data", str(tiny_dataset), "--out", str(s2),
                "--stage1", str(s1 / "last.safetensors"), *hold_args)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(checkpoint_paths(s2 / "last.safetensors")[1].read_text())
    assert HoldOut.from_config(meta["config"]["data"]["hold_out"]) == hold

    out = tmp_path / "eval"
    proc = _run("-m", "maskel.evaluate", "--checkpoint", str(s2 / "last.safetensors"), "--name", "gen", "--data", str(tiny_dataset), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    parts = json.loads((out / "report.json").read_text())["models"]["gen"]["with_joints_by_hold_out"]
    n_held = sum(hold.holds(r) for r in refs)
    assert parts["held out"]["samples"] == n_held and parts["seen"]["samples"] == len(refs) - n_held
    assert f"gen (joints, held out: {n_held})" in proc.stdout


def test_a_bad_hold_out_yaw_is_one_line(tiny_dataset: Path, tmp_path: Path):
    proc = _run("-m", "maskel.train", "stage1", "--config", "tiny", "--data", str(tiny_dataset), "--out", str(tmp_path / "s1"), "--hold-out-yaw", "back")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "LO:HI" in proc.stderr
