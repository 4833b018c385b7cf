"""The `maskel` command as a subprocess: generate, demo, delegation, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskel.cli import main
from maskel.data.joints import CANONICAL_JOINTS
from maskel.imageio import save_mask
from maskel.infer import dilate
from tests._server import REPO
from tests.test_infer import body_mask


def maskel(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maskel", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``maskel.cli.main`` in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_directory_with_a_corrupt_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "frames", tmp_path / "out"
    src.mkdir()
    masks = {f"frame_{i:04d}": body_mask(90 + 10 * i, 70 + 3 * i, shift=(i, -i)) for i in range(5)}
    for name, m in masks.items():
        save_mask(src / f"{name}.png", m)
    (src / "frame_0099.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (src / "notes.txt").write_text("ignored: not a PNG name")
    joints_dir = tmp_path / "joints"
    joints_dir.mkdir()
    pose = {"width": 70, "height": 90, "joints": [{"name": n, "x": 35.0, "y": 10 + 3 * i} for i, n in enumerate(CANONICAL_JOINTS)]}
    (joints_dir / "frame_0000.json").write_text(json.dumps(pose))
    proc = maskel("generate", str(src), "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--batch", "2",
                  "--joints-dir", str(joints_dir))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "frame_0099.png" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in masks)
    for name, m in masks.items():
        img = Image.open(out / f"{name}.png")
        assert img.size == (m.shape[1], m.shape[0]) and img.mode.startswith("I;16")
        x = np.asarray(img)
        assert not x[~dilate(m, 2)].any() and x[m].mean() > 0


def test_generate_size_bits_and_glob(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = body_mask(150, 100)
    save_mask(tmp_path / "a.png", m)
    save_mask(tmp_path / "b.png", m[:, ::-1])
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "generate", str(tmp_path / "*.png"), "--out", str(out), "--checkpoint",
                                str(tiny_checkpoint), "--size", "300", "--bits", "8")  # fmt: skip
    assert code == 0, err
    assert "wrote 2 X-ray(s)" in stdout
    for name in ("a.png", "b.png"):
        img = Image.open(out / name)
        assert img.size == (200, 300) and img.mode == "L"


def test_generate_errors_are_one_line(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = ("--checkpoint", str(tiny_checkpoint))
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "missing.png"), "--out", str(tmp_path), *ckpt)
    assert code == 2 and "missing.png" in err and "Traceback" not in err
    save_mask(tmp_path / "a.png", body_mask(40, 40))
    pt = tmp_path / "weights.pt"
    pt.write_bytes(b"\x80\x04 pickled")
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--checkpoint", str(pt))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pickle" in err
    monkeypatch.setenv("MASKEL_CHECKPOINT", str(tmp_path / "none.safetensors"))
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"))
    assert code == 2 and "MASKEL_CHECKPOINT" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), *ckpt, "--style", "ct")
    assert code == 2 and "unknown style 'ct'" in err
    with pytest.raises(SystemExit) as e:  # argparse usage errors
        main(["generate"])
    assert e.value.code == 2


def test_demo_writes_its_four_files(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code, stdout, err = run_cli(capsys, "demo", "--out", str(out), "--seed", "11", "--size", "64", "--checkpoint",
                                str(tiny_checkpoint))  # fmt: skip
    assert code == 0, err
    files = {n: out / f"{n}.png" for n in ("mask", "xray", "truth", "sheet")}
    assert all(p.is_file() for p in files.values())
    mask = np.asarray(Image.open(files["mask"])) > 0
    xray = np.asarray(Image.open(files["xray"]))
    assert xray.shape == mask.shape == (64, 64) and not xray[~dilate(mask, 2)].any() and xray[mask].mean() > 0
    assert Image.open(files["sheet"]).size == (3 * 64 + 2 * 4, 64)
    assert "seed 11" in stdout and str(files["sheet"]) in stdout


def test_train_and_mannequin_are_delegated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:  # maskel.train's own argparse --help
        main(["train", "--help"])
    assert e.value.code == 0 and "stage1" in capsys.readouterr().out
    pytest.importorskip("render.mannequin")
    out = tmp_path / "mannequin.json"
    code, _, err = run_cli(capsys, "mannequin", "--out", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["format"] == "maskel-mannequin/1" and data["bones"]


def test_ctrl_c_exits_130_without_a_traceback(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    m = body_mask(600, 600)
    for i in range(200):
        save_mask(src / f"f{i:04d}.png", np.roll(m, i, axis=1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "maskel", "generate", str(src), "--out", str(tmp_path / "out"), "--batch", "1",
         "--checkpoint", str(tiny_checkpoint)],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    while "generating" not in seen:  # the progress bar is up: the model is loaded, work is under way
        chunk = proc.stderr.read(1)
        assert chunk, f"exited early: {seen}"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(60) == 130
    assert "interrupted" in rest and "Traceback" not in seen + rest
    assert len(list((tmp_path / "out").glob("*.png"))) < 200


def _tampered(tiny_checkpoint: Path, out: Path, meta_change=None, tensor_change=None) -> Path:
    """A copy of the tiny checkpoint with its metadata (embedded and sidecar) or weights changed."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_checkpoint))
    with safe_open(str(tiny_checkpoint), framework="pt") as f:
        meta = json.loads(f.metadata()["maskel_meta"])
    if meta_change:
        meta_change(meta)
    if tensor_change:
        tensor_change(tensors)
    save_file(tensors, str(out), metadata={"maskel_meta": json.dumps(meta)})
    out.with_suffix(".json").write_text(json.dumps(meta))
    return out


def test_unwritable_out_and_bad_checkpoints_are_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    save_mask(tmp_path / "a.png", body_mask(40, 40))
    proc = maskel("generate", str(tmp_path / "a.png"), "--out", "/proc/x", "--checkpoint", str(tiny_checkpoint))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "/proc/x" in proc.stderr

    def huge(meta: dict) -> None:
        meta["resolution"] = meta["config"]["resolution"] = 100000

    def flipped(meta: dict) -> None:
        meta["pose_channel"] = not meta["pose_channel"]

    def nan(tensors: dict) -> None:
        key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = float("nan")

    cases = {
        "resolution": _tampered(tiny_checkpoint, tmp_path / "huge.safetensors", meta_change=huge),
        "pose_channel": _tampered(tiny_checkpoint, tmp_path / "flip.safetensors", meta_change=flipped),
        "NaN": _tampered(tiny_checkpoint, tmp_path / "nan.safetensors", tensor_change=nan),
    }
    for expect, ckpt in cases.items():
        proc = maskel("generate", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--checkpoint", str(ckpt), timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and expect in lines[0], proc.stderr


def test_a_bad_pose_file_fails_that_input_only(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src, joints = tmp_path / "frames", tmp_path / "joints"
    for name in ("a", "b"):
        save_mask(src / f"{name}.png", body_mask(40, 40))
    joints.mkdir()
    (joints / "a.json").write_text(json.dumps({"joints": [{"name": "pelvis", "x": True, "y": 3}]}))
    proc = maskel("generate", str(src), "--out", str(tmp_path / "o"), "--joints-dir", str(joints), "--checkpoint", str(tiny_checkpoint))
    assert proc.returncode == 1 and "a.png" in proc.stderr and "x must be a number" in proc.stderr, proc.stderr
    assert (tmp_path / "o" / "b.png").is_file() and not (tmp_path / "o" / "a.png").exists()


def test_a_token_on_the_command_line_is_warned_about_and_the_environment_is_not(tmp_path: Path) -> None:
    """--token shows in ps: the server says so (and names $MASKEL_TOKEN) before anything else;
    the token from the environment gets no warning."""
    missing = str(tmp_path / "none.safetensors")  # the server then stops in one line, exit 2
    flagged = maskel("serve", "--token", "s3cret", "--checkpoint", missing, timeout=120)
    from_env = maskel("serve", "--checkpoint", missing, env={"MASKEL_TOKEN": "s3cret"}, timeout=120)
    assert flagged.returncode == from_env.returncode == 2
    lines = flagged.stderr.strip().splitlines()
    assert len(lines) == 2 and "visible to other users" in lines[0] and "MASKEL_TOKEN" in lines[0]
    assert "visible to other users" not in from_env.stderr and len(from_env.stderr.strip().splitlines()) == 1
    assert "Traceback" not in flagged.stderr + from_env.stderr
