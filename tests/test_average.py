"""Checkpoint averaging (python -m maskel.average) on the real step checkpoints of a tiny run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from maskel.checkpoint import load_checkpoint
from maskel.infer import Predictor
from tests._train_helpers import REPO


def _average(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maskel.average", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_average_of_two_steps_is_their_mean_and_draws(tiny_checkpoint: Path, tmp_path: Path):
    run = tiny_checkpoint.parent
    steps = sorted(run.glob("step-*.safetensors"))
    assert len(steps) >= 2
    out = tmp_path / "avg"
    proc = _average(str(steps[-1]), str(steps[-2]), "--out", str(out))  # any order: sorted by step
    assert proc.returncode == 0, proc.stderr
    (old, old_meta), (new, new_meta) = load_checkpoint(steps[-2]), load_checkpoint(steps[-1])
    avg, meta = load_checkpoint(out)
    assert meta["averaged_steps"] == [old_meta["step"], new_meta["step"]] and meta["step"] == new_meta["step"]
    assert meta["metrics"] == {} and meta["config"] == new_meta["config"]
    floats = [k for k, v in new.items() if v.is_floating_point() and not torch.equal(v, old[k])]
    assert floats  # the two steps differ, so the mean is neither of them
    for k in floats:
        torch.testing.assert_close(avg[k], (old[k].double() + new[k].double()).div(2).to(new[k].dtype))
    for k, v in new.items():
        if not v.is_floating_point():
            assert torch.equal(avg[k], v)  # flags and counters: the newest checkpoint's
    pred = Predictor(out.with_suffix(".safetensors"), device="cpu")
    mask = np.zeros((64, 64), bool)
    mask[8:56, 20:44] = True
    (drawn,) = pred.predict([mask])
    assert np.isfinite(drawn.xray).all() and drawn.xray[mask].max() > 0


def test_checkpoints_of_other_stages_or_a_single_one_are_refused_in_one_line(tiny_checkpoint: Path, tmp_path: Path):
    stage1 = tiny_checkpoint.parents[1] / "s1" / "last.safetensors"
    for args in ([str(tiny_checkpoint), str(stage1)], [str(tiny_checkpoint)], [str(tiny_checkpoint), str(tiny_checkpoint)],
                 [str(tiny_checkpoint), str(tmp_path / "missing.safetensors")]):  # fmt: skip
        out = tmp_path / "avg"
        proc = _average(*args, "--out", str(out))
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr and not out.with_suffix(".safetensors").exists()
