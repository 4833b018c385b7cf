"""The trainer through its CLI: both stages end to end on both data layouts, exact resume after
SIGKILL, a 2-process torchrun (gloo) run, and one-line errors for bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from maskel.config import CONFIG_DIR, load_config
from maskel.imageio import save_gray
from maskel.models import load_generator
from maskel.train import main
from tests._train_helpers import REPO, run_train, write_manifest_dataset, write_upstream_dataset


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _dump_toml(d: dict, prefix: str = "") -> list[str]:
    """A nested dict of scalars/lists as TOML (enough for our presets)."""
    out = [f"{k} = {json.dumps(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            out += ["", f"[{prefix}{k}]", *_dump_toml(v, f"{prefix}{k}.")]
    return out


def write_config(path: Path, **overrides: dict) -> Path:
    """The tiny preset with some keys of some [sections] replaced, as a TOML file."""
    cfg = tomllib.loads((CONFIG_DIR / "tiny.toml").read_text())
    for section, values in overrides.items():
        cfg[section].update(values)
    path.write_text("\n".join(_dump_toml(cfg)) + "\n")
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A manifest dataset and a stage-1 run on it through the CLI (shared by the tests below)."""
    root = tmp_path_factory.mktemp("train")
    data = write_manifest_dataset(root / "data", n=12, size=48)
    _ok(run_train("stage1", "--config", "tiny", "--data", str(data), "--out", str(root / "s1")))
    return {"root": root, "data": data, "s1": root / "s1" / "last.safetensors"}


def test_stage1_then_stage2_end_to_end(work: dict[str, Path]):
    s1 = work["s1"].parent
    assert {"last.safetensors", "last.json", "best.safetensors", "state.safetensors", "metrics.jsonl"} <= {p.name for p in s1.iterdir()}
    assert sorted(p.name for p in (s1 / "samples").iterdir()) == ["step-000006.png", "step-000012.png"]
    recs = [json.loads(x) for x in (s1 / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in recs if r["kind"] == "train"]
    assert train[-1] < 0.7 * train[0], train  # the MAE learns
    out = work["root"] / "s2"
    proc = _ok(run_train("stage2", "--config", "tiny", "--data", str(work["data"]), "--out", str(out), "--stage1", str(work["s1"])))
    assert "stage2: 12 steps" in proc.stdout
    gen, meta = load_generator(out / "last.safetensors")
    assert meta["stage"] == "stage2" and meta["step"] == 12 and meta["pose_channel"] is True
    assert meta["data"]["samples"] == 12 and "ssim_body" in meta["metrics"] and "bone_dice" in meta["metrics"]
    # only what generation needs: no discriminator, no MAE
    assert not any(k.startswith(("disc", "mae")) for k in load_file(out / "last.safetensors"))
    with torch.no_grad():
        y = gen(torch.ones(1, 1, 32, 32), None, labels=True)
    assert y["xray"].shape == (1, 2, 32, 32) and y["labels"].shape == (1, 4, 32, 32)
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("adv" in r and "d_loss" in r for r in recs if r["kind"] == "train")  # GAN active after warm-up


def test_upstream_layout_end_to_end(tmp_path: Path):
    data = write_upstream_dataset(tmp_path / "up", n=10, size=40)
    assert main(["stage1", "--data", str(data), "--out", str(tmp_path / "s1"), "--steps", "3"]) == 0
    assert main(["stage2", "--data", str(data), "--out", str(tmp_path / "s2"), "--steps", "3", "--stage1", str(tmp_path / "s1" / "last")]) == 0
    gen, meta = load_generator(tmp_path / "s2" / "last.json")
    assert meta["styles"] == ["dxa"] and meta["pose_channel"] is False
    with torch.no_grad():
        y = gen(torch.ones(2, 1, 32, 32), None, labels=True)
    assert set(y) == {"xray"} and y["xray"].shape == (2, 1, 32, 32)


def _assert_same_run(a_dir: Path, b_dir: Path) -> None:
    """The two runs' inference checkpoints and training states (discriminator, optimiser moments,
    weight average) are equal."""
    for name in ("last", "state"):
        a, b = load_file(a_dir / f"{name}.safetensors"), load_file(b_dir / f"{name}.safetensors")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=0), (name, k)


def test_resume_after_sigkill_matches_an_uninterrupted_run(work: dict[str, Path]):
    root = work["root"]
    loss = {**load_config("tiny")["stage2"]["loss"], "adv_warmup": 2}  # the GAN trains before the kill
    # the weight average starts before the kill too: it is restored from the state like the weights
    cfg = write_config(root / "resume.toml", stage2={"steps": 9, "ckpt_every": 3, "val_every": 4, "ema_decay": 0.7, "ema_start": 2, "loss": loss})
    args = ["stage2", "--config", str(cfg), "--data", str(work["data"]), "--stage1", str(work["s1"])]
    _ok(run_train(*args, "--out", str(root / "full")))
    killed = root / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "maskel.train", *args, "--out", str(killed)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    state = killed / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["extra"]["step"] >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["extra"]["step"]
    assert 3 <= killed_at < 9
    _ok(run_train(*args, "--out", str(killed), "--resume"))
    _assert_same_run(root / "full", killed)
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert steps == list(range(1, 10))  # the killed run's extra lines were dropped on resume


def test_checkpoints_hold_the_weight_average_and_the_trained_weights_are_still_scored(work: dict[str, Path]):
    out = work["root"] / "ema"
    cfg = write_config(work["root"] / "ema.toml", stage2={"steps": 8, "val_every": 2, "ckpt_every": 4, "ema_decay": 0.8, "ema_start": 3})
    _ok(run_train("stage2", "--config", str(cfg), "--data", str(work["data"]), "--stage1", str(work["s1"]), "--out", str(out)))
    state, last = load_file(out / "state.safetensors"), load_file(out / "last.safetensors")
    averaged = {k[len("model.ema."):]: v for k, v in state.items() if k.startswith("model.ema.")}
    trained = {k[len("model.generator."):]: v for k, v in state.items() if k.startswith("model.generator.")}
    assert averaged.keys() == trained.keys() == last.keys()
    assert all(torch.equal(last[k], averaged[k]) for k in last)  # inference checkpoints: the average
    assert any(v.is_floating_point() and not torch.equal(v, averaged[k]) for k, v in trained.items())
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    val, raw = ({r["step"]: r["ssim_body"] for r in recs if r["kind"] == kind} for kind in ("val", "val_raw"))
    assert sorted(val) == [2, 4, 6, 8] and sorted(raw) == [4, 6, 8]  # the average exists from step 3 on
    assert any(val[s] != raw[s] for s in raw)


def test_the_mean_of_the_last_checkpoints_is_validated_and_kept_only_if_it_ranks_better(work: dict[str, Path]):
    out = work["root"] / "avg"
    cfg = write_config(work["root"] / "avg.toml", stage2={"steps": 12, "val_every": 3, "ckpt_every": 3, "keep_last": 4, "average_last": 3})
    proc = _ok(run_train("stage2", "--config", str(cfg), "--data", str(work["data"]), "--stage1", str(work["s1"]), "--out", str(out)))
    tensors, meta = load_file(out / "averaged.safetensors"), json.loads((out / "averaged.json").read_text())
    assert meta["averaged_steps"] == [6, 9, 12] and "ssim_body" in meta["metrics"]
    steps = [load_file(out / f"step-{s:06d}.safetensors") for s in (6, 9, 12)]
    k = next(k for k, v in steps[-1].items() if v.is_floating_point() and not torch.equal(v, steps[0][k]))
    torch.testing.assert_close(tensors[k], sum(s[k].double() for s in steps).div(3).to(tensors[k].dtype))
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    (avg_rec,) = [r for r in recs if r["kind"] == "val_averaged"]
    assert avg_rec["ssim_body"] == pytest.approx(meta["metrics"]["ssim_body"], abs=1e-6)
    won = avg_rec["ssim_body"] > max(r["ssim_body"] for r in recs if r["kind"] == "val")  # tiny ranks by SSIM alone
    best = json.loads((out / "best.json").read_text())
    assert best.get("averaged_steps") == ([6, 9, 12] if won else None)
    assert ("is the new best" in proc.stderr) == won
    # --resume of the finished run averages again and keeps what it had
    _ok(run_train("stage2", "--config", str(cfg), "--data", str(work["data"]), "--stage1", str(work["s1"]), "--out", str(out), "--resume"))
    assert json.loads((out / "best.json").read_text()) == best


def test_torchrun_two_processes_gloo(work: dict[str, Path]):
    out = work["root"] / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "maskel.train",
           "stage2", "--config", "tiny", "--data", str(work["data"]), "--stage1", str(work["s1"]), "--out", str(out),
           "--steps", "7", "--device", "cpu"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gen, meta = load_generator(out / "last.safetensors")
    assert meta["step"] == 7
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if r["kind"] == "train"] == list(range(1, 8))  # rank 0 logs alone


# --- bad inputs: one line, exit code 2 -------------------------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str], expect: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err


def test_empty_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, ["stage1", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], "no samples in")


def test_mask_xray_size_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture):
    data = write_upstream_dataset(tmp_path / "up", n=4, size=40)
    save_gray(data / "2" / "skeleton.png", torch.zeros(30, 30).numpy())
    _one_line_error(capsys, ["stage1", "--data", str(data), "--out", str(tmp_path / "o")], "sample 2: skeleton.png is 30x30 but the mask is 40x40")


def test_corrupt_png_through_the_cli(tmp_path: Path):
    data = write_manifest_dataset(tmp_path / "d", n=4, size=40)
    (data / "samples" / "000001" / "dxa.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    proc = run_train("stage1", "--data", str(data), "--out", str(tmp_path / "o"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert lines[-1].startswith("error: ") and "000001" in lines[-1] and "dxa" in lines[-1], proc.stderr


def test_stage1_checkpoint_of_wrong_stage_or_resolution(work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture):
    s2 = work["root"] / "s2" / "last.safetensors"
    if not s2.exists():  # this test may run alone
        _ok(run_train("stage2", "--data", str(work["data"]), "--out", str(s2.parent), "--stage1", str(work["s1"]), "--steps", "1"))
    base = ["stage2", "--data", str(work["data"]), "--out", str(tmp_path / "o")]
    _one_line_error(capsys, [*base, "--stage1", str(s2)], "a stage2 checkpoint, but a stage1 checkpoint is needed")
    cfg64 = tmp_path / "c64.toml"
    cfg64.write_text((CONFIG_DIR / "tiny.toml").read_text().replace("resolution = 32", "resolution = 64"))
    _one_line_error(capsys, [*base, "--config", str(cfg64), "--stage1", str(work["s1"])], "trained at 32px, but this run uses 64px")
    _one_line_error(capsys, [*base, "--stage1", str(tmp_path / "nope.safetensors")], "checkpoint not found")


def test_a_finished_run_is_never_overwritten_by_a_rerun(work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "run"
    base = ["stage1", "--data", str(work["data"]), "--out", str(out), "--steps", "3"]
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    _one_line_error(capsys, base, "already holds a training run")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main([*base, "--overwrite"]) == 0
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert steps == sorted(set(steps)) and steps[-1] == 3, "metrics.jsonl was duplicated"
    capsys.readouterr()
    _one_line_error(capsys, [*base, "--resume", "--overwrite"], "contradict")


def test_a_run_stopped_before_its_first_save_resumes(work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture):
    """What a kill before the first state save leaves (a log line, no state): both the recipe's plain
    rerun and --resume start from step 0 (this refused before)."""
    for flags in ([], ["--resume"]):
        out = tmp_path / f"stopped{len(flags)}"
        out.mkdir()
        (out / "metrics.jsonl").write_text(json.dumps({"step": 1, "kind": "train", "loss": 1.0}) + "\n")
        assert main(["stage1", "--data", str(work["data"]), "--out", str(out), "--steps", "2", *flags]) == 0
        steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
        assert json.loads((out / "state.json").read_text())["extra"]["step"] == 2 and steps == sorted(set(steps))


def test_sigkill_right_after_the_first_save_resumes(work: dict[str, Path]):
    """The state is written before the checkpoints, so a directory with a checkpoint always has a
    state at least as new: kill the run as soon as anything was saved, and --resume continues."""
    out = work["root"] / "kill-first-save"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    args = ["stage1", "--data", str(work["data"]), "--out", str(out), "--steps", "12"]
    proc = subprocess.Popen([sys.executable, "-m", "maskel.train", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not any(out.glob("*.safetensors")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "state.safetensors").exists() or not any(out.glob("*.safetensors"))
    _ok(run_train(*args, "--resume"))
    assert json.loads((out / "last.json").read_text())["step"] == 12


def test_ctrl_c_saves_state_and_exits_cleanly(work: dict[str, Path]):
    out = work["root"] / "interrupted"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "maskel.train", "stage1", "--data", str(work["data"]), "--out", str(out),
                             "--steps", "100000"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted at step ")
    step = json.loads((out / "state.json").read_text())["extra"]["step"]
    assert step >= 2 and json.loads((out / "last.json").read_text())["step"] == step


def test_ctrl_c_then_resume_matches_an_uninterrupted_run(work: dict[str, Path]):
    """Ctrl-C lands anywhere in a step (between the discriminator's and the generator's update, in
    the weight average): the run stops at the end of that step, so the state it saves resumes to
    the uninterrupted run exactly. Interrupted twice, at moments that differ."""
    root = work["root"]
    loss = {**load_config("tiny")["stage2"]["loss"], "adv_warmup": 2}
    cfg = write_config(root / "ctrl-c.toml", stage2={"steps": 40, "ckpt_every": 5, "val_every": 7, "ema_decay": 0.7, "ema_start": 2, "loss": loss})
    args = ["stage2", "--config", str(cfg), "--data", str(work["data"]), "--stage1", str(work["s1"])]
    _ok(run_train(*args, "--out", str(root / "ctrl-c-full")))
    out = root / "ctrl-c"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    stopped_at = []
    for n, delay in enumerate((0.3, 0.75)):
        cmd = [sys.executable, "-m", "maskel.train", *args, "--out", str(out), *(["--resume"] if n else [])]
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        first_step = len((out / "metrics.jsonl").read_text().splitlines()) if n else 0
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and (
            not (out / "metrics.jsonl").exists() or len((out / "metrics.jsonl").read_text().splitlines()) <= first_step
        ):
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("interrupted at step "), err
        stopped_at.append(json.loads((out / "state.json").read_text())["extra"]["step"])
    assert stopped_at[0] < stopped_at[1] < 40, stopped_at
    _ok(run_train(*args, "--out", str(out), "--resume"))
    _assert_same_run(root / "ctrl-c-full", out)


def test_set_overrides_a_config_value_and_is_recorded(tmp_path: Path):
    data = write_upstream_dataset(tmp_path / "up", n=10, size=40)
    args = ["--data", str(data), "--steps", "2", "--set", "stage1.lr=3e-4", "--set", "data.augment.flip=0.0"]
    assert main(["stage1", *args, "--out", str(tmp_path / "s1")]) == 0
    meta = json.loads((tmp_path / "s1" / "last.json").read_text())
    assert meta["config"]["stage1"]["lr"] == 3e-4 and meta["config"]["data"]["augment"]["flip"] == 0.0
    assert load_config("tiny")["data"]["augment"]["flip"] != 0.0  # the preset itself is untouched


@pytest.mark.parametrize("bad", ["nosection", "nosuch.key=1", "stage1.lr"])
def test_a_bad_set_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str):
    data = write_upstream_dataset(tmp_path / "up", n=4, size=40)
    assert main(["stage1", "--data", str(data), "--out", str(tmp_path / "s1"), "--set", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --set") and "\n" not in err
