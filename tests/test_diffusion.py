"""The diffusion parts (maskel.diffusion) on tiny configs: the DDPM trains and samples
deterministically, ``maskel augment`` resumes after SIGKILL without duplicates and stage 1
pre-trains on its output, the super-resolution trains, runs in the Predictor and ``maskel generate
--sr``, and refuses a wrong scale factor or stage in one line; MONAI stays off the default paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from maskel import MaskelError
from maskel.cli import main as cli_main
from maskel.imageio import load_gray, load_mask
from maskel.train import main as train_main
from tests._train_helpers import REPO, write_manifest_dataset, write_upstream_dataset

pytest.importorskip("monai")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny dataset, a tiny DDPM, a tiny stage-1 + stage-2 generator (32²) and a tiny ×2 SR
    (32² -> 64²), all trained in this process through ``python -m maskel.train``'s main."""
    root = tmp_path_factory.mktemp("diffusion")
    data = write_manifest_dataset(root / "data", n=12, size=48)
    assert train_main(["ddpm", "--config", "ddpm-tiny", "--data", str(data), "--out", str(root / "ddpm")]) == 0
    assert train_main(["stage1", "--config", "tiny", "--data", str(data), "--out", str(root / "s1")]) == 0
    assert train_main(["stage2", "--config", "tiny", "--data", str(data), "--out", str(root / "s2"),
                       "--stage1", str(root / "s1" / "last.safetensors")]) == 0  # fmt: skip
    assert train_main(["sr", "--config", "sr-tiny", "--data", str(data), "--out", str(root / "sr")]) == 0
    return {"root": root, "data": data, "ddpm": root / "ddpm" / "last.safetensors", "s2": root / "s2" / "last.safetensors",
            "sr": root / "sr" / "last.safetensors"}  # fmt: skip


def test_ddpm_checkpoint_and_deterministic_sampling(work: dict[str, Path]):
    from maskel.checkpoint import load_checkpoint
    from maskel.diffusion.ddpm import XraySampler

    _, meta = load_checkpoint(work["ddpm"], stage="ddpm")
    assert meta["stage"] == "ddpm" and meta["step"] == 6 and meta["styles"] == ["radiograph", "dxa"]
    assert json.loads(work["ddpm"].with_suffix(".json").read_text())["stage"] == "ddpm"
    losses = [json.loads(x)["loss"] for x in (work["ddpm"].parent / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and all(np.isfinite(losses))
    sampler = XraySampler(work["ddpm"])
    m1, x1 = sampler.sample(seed=3, indices=[0, 1, 2])
    m2, x2 = sampler.sample(seed=3, indices=[0, 1, 2])
    assert x1.shape == (3, 2, 16, 16) and m1.shape == (3, 16, 16) and m1.dtype == bool
    assert np.array_equal(x1, x2) and np.array_equal(m1, m2)  # same seed, same samples
    _, alone = sampler.sample(seed=3, indices=[1])
    np.testing.assert_allclose(alone[0], x1[1], atol=1e-5)  # a sample does not depend on its batch
    _, other = sampler.sample(seed=4, indices=[0, 1, 2])
    assert not np.allclose(other, x1)
    assert float(x1.min()) >= 0.0 and float(x1.max()) <= 1.0
    assert not x1[~np.repeat(m1[:, None], 2, axis=1)].any()  # zero outside the drawn silhouette


def _augment_cmd(ckpt: Path, out: Path, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "maskel", "augment", "--checkpoint", str(ckpt), "--n", str(n), "--out", str(out), *extra]


def _progress(out: Path) -> list[str]:
    p = out / "augment.progress"
    return p.read_text().splitlines() if p.exists() else []


def test_augment_resumes_after_sigkill_without_duplicates(work: dict[str, Path], capsys: pytest.CaptureFixture):
    n = 120
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out = work["root"] / "aug"
    proc = subprocess.Popen(_augment_cmd(work["ddpm"], out, n, "--batch", "1"), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while len(_progress(out)) < 5 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(_progress(out))
    assert 0 < partial < n, f"the kill should land mid-run ({partial} of {n} done)"
    assert not (out / "manifest.jsonl").exists()
    done = subprocess.run(_augment_cmd(work["ddpm"], out, n, "--batch", "4"), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"drew {n - partial} sample(s)" in done.stdout  # only the missing ones
    indices = [int(line.split()[0]) for line in _progress(out)]
    assert sorted(indices) == list(range(n))  # each index exactly once
    kept = [int(line.split()[0]) for line in _progress(out) if line.endswith(" ok")]
    recs = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == [f"{i:06d}" for i in sorted(kept)]
    # each sample as drawn in one go (its files vs the sampler called here on that index alone)
    from maskel.diffusion.ddpm import XraySampler

    sampler = XraySampler(work["ddpm"])
    for r in recs[:: max(1, len(recs) // 8)]:
        m, x = sampler.sample(seed=0, indices=[r["index"]])
        assert np.array_equal(load_mask(out / r["files"]["mask"]).mask, m[0])
        np.testing.assert_allclose(load_gray(out / r["files"]["dxa"]), x[0, 1], atol=1e-4)
    # other settings into the same folder: one line, nothing drawn
    assert cli_main(["augment", "--checkpoint", str(work["ddpm"]), "--n", str(n), "--out", str(out), "--seed", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "other settings (seed 0 -> 9)" in err, err
    work["aug"] = out


def test_stage1_pretrains_on_real_plus_augmented(work: dict[str, Path]):
    from maskel.checkpoint import load_checkpoint

    if "aug" not in work:
        pytest.skip("needs the augment test's folder")
    out = work["root"] / "s1aug"
    assert train_main(["stage1", "--config", "tiny", "--data", str(work["data"]), "--augmented", str(work["aug"]), "--out", str(out)]) == 0
    _, meta = load_checkpoint(out / "last.safetensors", stage="stage1")
    n_aug = len((work["aug"] / "manifest.jsonl").read_text().splitlines())
    assert meta["data"]["samples"] == 12 + n_aug


def test_preview_draws_an_augment_folder(work: dict[str, Path], tmp_path: Path):
    """`maskel augment` samples carry no labels nor pose map: the contact sheet shows them blank."""
    from PIL import Image

    from render.preview import HEADER_PX
    from render.preview import main as preview_main

    if "aug" not in work:
        pytest.skip("needs the augment test's folder")
    assert preview_main(["--data", str(work["aug"]), "--n", "3", "--out", str(tmp_path / "sheet.png")]) == 0
    rec = json.loads((work["aug"] / "manifest.jsonl").read_text().splitlines()[0])
    mask = load_mask(work["aug"] / rec["files"]["mask"]).mask
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("L"))
    r = mask.shape[0]
    np.testing.assert_array_equal(sheet[HEADER_PX : HEADER_PX + r, :r] > 127, mask)  # the first row's mask tile
    assert (sheet[HEADER_PX : HEADER_PX + r, 3 * (r + 2) : 4 * (r + 2) - 2] == 0).all()  # its labels tile: blank


def test_sr_in_the_predictor_is_deterministic_and_follows_the_silhouette(work: dict[str, Path]):
    from maskel.infer import Predictor

    plain = Predictor(work["s2"], device="cpu")
    sr = Predictor(work["s2"], device="cpu", sr=work["sr"], sr_scale=2)
    assert sr.info()["super_resolution"] == "×2 (32px -> 64px, 3 steps)"
    mask = load_mask(work["data"] / "samples" / "000000" / "mask.png").mask
    a = sr.predict([mask], seed=5)[0].xray
    b = sr.predict([mask], seed=5)[0].xray
    c = sr.predict([mask], seed=6)[0].xray
    base = plain.predict([mask], seed=5)[0].xray
    assert a.shape == mask.shape == base.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, base)
    from maskel.infer import dilate

    assert not a[~dilate(mask, 2)].any()


def test_the_server_super_resolves_the_requests_that_ask(work: dict[str, Path]):
    """`maskel serve --sr`: a request's "sr" turns it on (the add-on's client sends it), health
    names it; a server without an SR checkpoint refuses "sr": true with its own code."""
    import base64

    import httpx

    from blender_addon.core.client import MaskelClient, describe_health
    from maskel.infer import Predictor
    from tests._server import start_server

    mask_png = (work["data"] / "samples" / "000000" / "mask.png").read_bytes()
    body = {"mask": base64.b64encode(mask_png).decode(), "seed": 5}
    with start_server(work["s2"], "--sr", str(work["sr"]), "--sr-scale", "2") as server:
        health = httpx.get(server.url + "/v1/health").json()
        assert health["super_resolution"] == "×2 (32px -> 64px, 3 steps)"
        assert "super-resolution ×2" in describe_health(health)
        lifted = httpx.post(server.url + "/v1/xray", json={**body, "sr": True}, timeout=120).json()
        plain = httpx.post(server.url + "/v1/xray", json=body, timeout=120).json()
        assert lifted["super_resolution"] == health["super_resolution"] and plain["super_resolution"] is None
        assert lifted["xray"] != plain["xray"]
        bad = httpx.post(server.url + "/v1/xray", json={**body, "sr": "yes"}, timeout=60)
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
        via_addon = MaskelClient(server.url, timeout=120).xray(mask_png, style="radiograph", seed=5, sr=True)
        assert via_addon.super_resolution == health["super_resolution"]
    # the same X-ray as the Predictor's with the SR checkpoint (16-bit PNG of it)
    mask = load_mask(work["data"] / "samples" / "000000" / "mask.png").mask
    direct = Predictor(work["s2"], device="cpu", sr=work["sr"]).predict([mask], seed=5, sr=True)[0].xray
    served = load_gray(base64.b64decode(lifted["xray"]))
    assert np.abs(served - direct).max() <= 1.0 / 65535 + 1e-6
    with start_server(work["s2"]) as server:
        assert httpx.get(server.url + "/v1/health").json()["super_resolution"] is None
        r = httpx.post(server.url + "/v1/xray", json={**body, "sr": True}, timeout=60)
        assert r.status_code == 422 and r.json()["error"] == "no_super_resolution", r.text
        assert "--sr" in r.json()["message"] and "\n" not in r.json()["message"]


def test_sr_upsampler_shapes_and_mask(work: dict[str, Path]):
    from maskel.diffusion.sr import SuperResolver, eta_schedule

    eta = eta_schedule(4, 1.0)
    assert eta.shape == (4,) and bool((eta[1:] > eta[:-1]).all()) and float(eta[-1]) == pytest.approx(0.999)
    up = SuperResolver(work["sr"])
    lo = np.random.default_rng(0).random((2, 2, 32, 32), dtype=np.float32)
    masks = np.zeros((2, 64, 64), bool)
    masks[:, 8:56, 20:44] = True
    out = up.upsample(lo, masks, seed=1)
    assert out.shape == (2, 2, 64, 64) and not out[:, :, ~masks[0]].any()
    assert np.array_equal(out, up.upsample(lo, masks, seed=1))
    with pytest.raises(MaskelError, match=r"must be \(B, 2, 32, 32\)"):
        up.upsample(lo[:, :, :16, :16], masks)


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str], expect: str) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expect in err, err


def test_wrong_scale_stage_or_resolution_refused_in_one_line(work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture):
    mask = str(work["data"] / "samples" / "000000" / "mask.png")
    base = ["generate", mask, "--out", str(tmp_path / "o"), "--checkpoint", str(work["s2"]), "--device", "cpu"]
    _one_line_error(capsys, base + ["--sr", str(work["sr"]), "--sr-scale", "4"], "upsamples ×2, not ×4")
    _one_line_error(capsys, base + ["--sr", str(work["ddpm"])], "a ddpm checkpoint, but a sr checkpoint is needed")
    _one_line_error(capsys, base + ["--sr-scale", "2"], "no super-resolution checkpoint")
    # an SR model for another generator resolution (×2 from 16², the generator draws 32²)
    assert train_main(["sr", "--config", "sr-tiny", "--resolution", "32", "--data", str(work["data"]), "--out", str(tmp_path / "sr32"), "--steps", "1"]) == 0
    capsys.readouterr()
    _one_line_error(capsys, base + ["--sr", str(tmp_path / "sr32" / "last.safetensors")], "but the generator draws at 32px")
    # ...and the SR / DDPM checkpoints are not generators
    _one_line_error(capsys, ["generate", mask, "--out", str(tmp_path / "o"), "--checkpoint", str(work["sr"])], "a sr checkpoint, but a stage2 checkpoint is needed")
    assert cli_main(base + ["--sr", str(work["sr"]), "--sr-scale", "2"]) == 0
    assert load_gray(tmp_path / "o" / "mask.png").shape == (48, 48)


def test_diffusion_cli_errors_are_one_line(work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture):
    assert train_main(["ddpm", "--config", "tiny", "--data", str(work["data"]), "--out", str(tmp_path / "x")]) == 2
    assert "not a ddpm config" in capsys.readouterr().err
    assert train_main(["sr", "--config", "sr-tiny", "--scale", "4", "--resolution", "40", "--data", str(work["data"]), "--out", str(tmp_path / "y")]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    _one_line_error(capsys, ["augment", "--checkpoint", str(work["s2"]), "--n", "2", "--out", str(tmp_path / "z")], "a stage2 checkpoint, but a ddpm checkpoint is needed")
    assert train_main(["ddpm", "--config", "ddpm-tiny", "--data", str(work["data"]), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "no training state" in capsys.readouterr().err


def test_default_paths_do_not_import_monai():
    code = ("import sys; import maskel.cli, maskel.infer, maskel.serve; from maskel.infer import Predictor; "
            "Predictor(device='cpu'); assert 'monai' not in sys.modules, 'monai imported'; print('ok')")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_upstream_layout_model_augments_in_the_upstream_layout(tmp_path: Path):
    from maskel.data.datasets import find_refs
    from maskel.diffusion.augment import augment

    data = write_upstream_dataset(tmp_path / "up", n=8, size=40)
    assert train_main(["ddpm", "--config", "ddpm-tiny", "--data", str(data), "--out", str(tmp_path / "ddpm")]) == 0
    out = tmp_path / "aug"
    assert augment(tmp_path / "ddpm" / "last.safetensors", 4, out) == 4
    kept = [line.split()[0] for line in _progress(out) if line.endswith(" ok")]
    assert kept
    layout, refs, styles, _ = find_refs(out)
    assert layout == "upstream" and styles == ["dxa"] and sorted(r.id for r in refs) == sorted(kept)
    assert not (out / "manifest.jsonl").exists()
    assert augment(tmp_path / "ddpm" / "last.safetensors", 4, out) == 0  # finished: nothing drawn again
