"""Two-stage MaSkel training.

    python -m maskel.train stage1 --config cpu-256 --data DIR [DIR ...] --out runs/s1
    python -m maskel.train stage2 --config cpu-256 --data DIR [DIR ...] --out runs/s2 --stage1 runs/s1/best.safetensors
    python -m maskel.train ddpm|sr ...   (the diffusion parts: maskel.diffusion.ddpm / .sr)
    torchrun --nproc_per_node N -m maskel.train ...   (DDP: gloo on CPU, NCCL on GPU)

The stages themselves (what each builds, one optimiser step, how validation scores) are step
objects in maskel.stages; the presets and overrides are maskel.config; this module is the loop
around a stage (data, LR, per-step seeds, validation, checkpoints, resume) and the CLI.

Out dir: last.* / best.* / step-XXXXXX.* (inference checkpoints, safetensors + JSON), state.*
(for --resume), metrics.jsonl, samples/step-XXXXXX.png, TensorBoard events when installed; with
``average_last`` = N in the stage's config, also averaged.* (the mean of the last N step
checkpoints, validated; it becomes best.* when it ranks better).

Exact resume: the sampler's order comes from (seed, epoch), each sample's augmentation from
(seed, epoch, sample index), and the global torch RNG (MAE masking, dead-code restarts) is
reseeded from (seed, step, rank) before every step; the LR is a function of the step. With the
weights, optimiser moments and codebook buffers restored from state.*, a resumed run repeats the
uninterrupted one exactly on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from maskel import MaskelError
from maskel.atomic import atomic_write_bytes
from maskel.average import average_checkpoints
from maskel.checkpoint import checkpoint_paths, make_meta, save_checkpoint, save_state
from maskel.checkpoint import load_state as load_train_state
from maskel.config import apply_overrides, load_config, presets, resolve_config
from maskel.data.augment import AugmentConfig
from maskel.data.datasets import HoldOut, PairedData, TrainView, load_paired_many, split_indices
from maskel.ema import ema_update, frozen_copy
from maskel.evaluate import mean_metrics
from maskel.imageio import save_u8
from maskel.interrupt import ctrl_c_stops
from maskel.models import load_mae
from maskel.schedule import lr_at, step_seed
from maskel.stages import Placement, Stage1, Stage2

# --- distributed ---------------------------------------------------------------------------


@dataclass
class Runtime:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()

    def any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any process (so that all of them stop at the same step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return bool(t.item())


def setup_runtime(device: str) -> Runtime:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MaskelError(f"device {device!r} asked for but CUDA is not available (try --device cpu)")
    dev = torch.device(f"cuda:{local}" if device.startswith("cuda") and world > 1 else device)  # one GPU per rank
    if world > 1:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        else:  # do not oversubscribe the cores with one full thread pool per process
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
        torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Runtime(rank=rank, world=world, device=dev)


def _ignore_ctrl_c(worker_id: int) -> None:
    """Data workers leave Ctrl-C (sent to the whole process group) to the main process: a worker
    that dies of it would fail the main process's next fetch instead of letting it stop cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class SkipSampler(Sampler[int]):
    """The first ``skip`` indices of an epoch are dropped (resuming in the middle of an epoch)."""

    def __init__(self, base: Sampler[int], skip: int):
        self.base, self.skip = base, skip

    def __iter__(self) -> Iterator[int]:
        for n, i in enumerate(self.base):
            if n >= self.skip:
                yield i

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)  # type: ignore[arg-type]


# --- the trainer ---------------------------------------------------------------------------


class Trainer:
    """The loop around one stage (maskel.stages): data views and sampler, LR and per-step seeds,
    validation, checkpoints, exact resume, logging."""

    def __init__(self, task: Stage1 | Stage2, cfg: dict[str, Any], data: PairedData, out: Path, rt: Runtime):
        self.task, self.stage, self.cfg, self.data, self.rt = task, task.name, cfg, data, rt
        self.scfg = cfg[task.name]
        self.out = out
        self.seed = int(cfg["seed"])
        self.total = int(self.scfg["steps"])
        self.step = 0
        self.best: float | None = None
        # A weight average (``ema_decay`` > 0): from ``ema_start`` on, validation, the best-checkpoint
        # choice and the inference checkpoints use an EMA of the trained weights; the trained ones
        # are still validated and logged as "val_raw", so a run shows what the average bought.
        self.ema_decay = float(self.scfg.get("ema_decay", 0.0))
        self.ema_start = int(self.scfg.get("ema_start", 0))
        self.ema = frozen_copy(task.model) if self.ema_decay > 0 else None
        self.modules = task.modules if self.ema is None else {**task.modules, "ema": self.ema}
        self.cuda = rt.device.type == "cuda"
        keys = [s.split_key for s in data.samples]
        self.train_idx, self.val_idx = split_indices(keys, float(cfg["data"]["val_fraction"]))
        aug = AugmentConfig.from_config(cfg["data"].get("augment"))
        crop = self.scfg.get("crop")
        limbs = task.reads_limbs  # stage 1 and mask-only models never read them
        self.view = TrainView(data, self.train_idx, self.seed, aug, int(cfg["resolution"]), int(crop) if crop else None, limbs)
        val_limit = int(cfg["data"].get("val_limit", 0)) or None  # whole frames are slow to score on a CPU
        self.val_view = TrainView(data, self.val_idx[:val_limit], self.seed, None, int(cfg["resolution"]), limbs=limbs)
        self.batch = int(self.scfg["batch_size"]) // rt.world
        if self.batch < 1:
            raise MaskelError(f"batch_size {self.scfg['batch_size']} is smaller than the {rt.world} processes")
        self.sampler = DistributedSampler(self.view, num_replicas=rt.world, rank=rt.rank, shuffle=True, seed=self.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // self.batch
        if self.steps_per_epoch == 0:
            raise MaskelError(
                f"{len(self.train_idx)} training samples are fewer than one batch of {self.batch} per process; lower batch_size"
            )
        self.data_summary = {**data.summary(), "train": len(self.train_idx), "val": len(self.val_idx)}
        self.writer = None
        if rt.main:
            self.out.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tb"))
            except ImportError:
                pass

    def param_count(self) -> int:
        return sum(p.numel() for p in self.task.model.parameters())

    # one step ------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        torch.manual_seed(step_seed(self.seed, self.step, self.rt.rank))
        for name, opt in self.task.optims.items():
            for g in opt.param_groups:
                g["lr"] = lr_at(self.step, self.task.base_lr[name], int(self.scfg["warmup"]), self.total)
        terms = self.task.step(batch, self.step)
        if self.ema is not None and self.step >= self.ema_start:  # the first update is a copy
            ema_update(self.ema, self.task.model, self.ema_decay if self.step > self.ema_start else 0.0)
        return terms

    @property
    def inference_model(self) -> torch.nn.Module:
        """The weights that validation scores and checkpoints hold: the EMA once it has started."""
        return self.ema if self.ema is not None and self.step > self.ema_start else self.task.model

    # validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, model: torch.nn.Module, grid: bool = True) -> dict[str, float]:
        """Mean validation metrics of ``model`` on whole frames (scored inside the body,
        ``score_batch``); with ``grid``, the first batch is saved as a sample grid."""
        was_training = model.training
        model.eval()
        loader = DataLoader(self.val_view if self.val_idx else self.view, batch_size=max(1, self.batch))
        rows: list[dict[str, torch.Tensor]] = []
        shown = None
        torch.manual_seed(self.seed)  # the same MAE masks at every validation (and no effect on training RNG)
        for batch in loader:
            batch = {k: v.to(self.rt.device) for k, v in batch.items()}
            row, shown_in, pred = self.task.score(batch, model)
            rows.append(row)
            if shown is None and grid:
                shown = (shown_in.float(), pred, batch["xray"])
        model.train(was_training)
        if shown is not None:
            self._save_grid(*shown)
        return mean_metrics(rows)

    def _save_grid(self, inp: torch.Tensor, pred: torch.Tensor, truth: torch.Tensor) -> None:
        """Rows: up to 4 validation samples; columns: input (mask / masked X-ray) | generated | truth,
        one block of columns per style."""
        n = min(4, len(pred))
        rows = []
        for i in range(n):
            cols = [torch.cat([inp[i, c], pred[i, c], truth[i, c]], dim=1) for c in range(pred.shape[1])]
            rows.append(torch.cat(cols, dim=1))
        img = (torch.cat(rows, dim=0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        save_u8(self.out / "samples" / f"step-{self.step:06d}.png", img)

    def _is_better(self, metrics: dict[str, float]) -> bool:
        value = self.task.ranking(metrics)
        if self.best is None or value < self.best:
            self.best = value
            return True
        return False

    def average_last(self) -> None:
        """Once training is done: the mean of the last ``average_last`` step checkpoints (a free
        relative of a weight EMA), validated like any checkpoint and saved as ``averaged``; it
        replaces ``best`` only if it ranks better. Run again by --resume of a finished run."""
        n = int(self.scfg.get("average_last", 0))
        steps = sorted(self.out.glob("step-*.safetensors"))[-n:] if n >= 2 else []
        if len(steps) < 2:
            return
        tensors, meta = average_checkpoints(steps)
        model = frozen_copy(self.inference_model)
        model.load_state_dict(tensors)
        metrics = self.validate(model, grid=False)
        self.log("val_averaged", {**metrics, "checkpoints": float(len(steps))})
        meta = {**meta, "metrics": metrics}
        save_checkpoint(self.out / "averaged", tensors, meta)
        won = self._is_better(metrics)
        if won:
            self._save_state()
            save_checkpoint(self.out / "best", tensors, meta)
        span = f"steps {meta['averaged_steps'][0]}-{meta['averaged_steps'][-1]}"
        print(f"{self.stage}: the mean of {span} ({len(steps)} checkpoints) is {'the new' if won else 'not the'} best checkpoint", file=sys.stderr)

    # checkpoints ---------------------------------------------------------------------------
    def _meta(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return make_meta(self.stage, self.cfg, self.step, metrics, self.data_summary)

    def _save_state(self) -> None:
        save_state(self.out / "state", self.modules, self.task.optims, {"step": self.step, "best": self.best, "stage": self.stage, "seed": self.seed})

    def save(self, metrics: dict[str, Any], best: bool) -> None:
        # The state first: a kill at any point leaves no checkpoint newer than the state, so a
        # directory with a checkpoint always resumes (check_run_dir relies on it).
        self._save_state()
        tensors = self.inference_model.state_dict()
        meta = self._meta(metrics)
        save_checkpoint(self.out / "last", tensors, meta)
        save_checkpoint(self.out / f"step-{self.step:06d}", tensors, meta)
        if best:
            save_checkpoint(self.out / "best", tensors, meta)
        keep = int(self.scfg.get("keep_last", 3))
        olds = sorted(self.out.glob("step-*.safetensors"))
        for old in olds[: max(0, len(olds) - keep)]:
            for p in checkpoint_paths(old):
                p.unlink(missing_ok=True)

    def resume(self) -> None:
        st = checkpoint_paths(self.out / "state")[0]
        if not st.exists():
            raise MaskelError(f"--resume: no training state in {self.out} (state.safetensors)")
        extra = load_train_state(st, self.modules, self.task.optims)
        if extra.get("stage") != self.stage:
            raise MaskelError(f"--resume: {st} is from {extra.get('stage')}, not {self.stage}")
        self.step, self.best = int(extra["step"]), extra.get("best")
        if self.rt.main:
            self._truncate_metrics()

    def start_fresh(self) -> None:
        """Step 0: drop the metrics of an earlier start that was stopped before its first save."""
        if self.rt.main:
            (self.out / "metrics.jsonl").unlink(missing_ok=True)

    def _truncate_metrics(self) -> None:
        path = self.out / "metrics.jsonl"
        if path.exists():
            keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= self.step]
            atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())

    def log(self, kind: str, values: dict[str, float]) -> None:
        if not self.rt.main:
            return
        rec = {"step": self.step, "kind": kind, "time": round(time.time(), 3), **{k: round(v, 6) for k, v in values.items()}}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{kind}/{k}", v, self.step)

    # the loop ------------------------------------------------------------------------------
    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            epoch, pos = divmod(self.step, self.steps_per_epoch)
            self.sampler.set_epoch(epoch)
            self.view.set_epoch(epoch)
            loader = DataLoader(
                self.view,
                batch_size=self.batch,
                sampler=SkipSampler(self.sampler, pos * self.batch),
                drop_last=True,
                num_workers=int(self.cfg["data"].get("workers", 0)),
                pin_memory=self.cuda,
                worker_init_fn=_ignore_ctrl_c,
                generator=torch.Generator().manual_seed(self.seed),  # never touch the global RNG
            )
            for batch in loader:
                yield {k: v.to(self.rt.device, non_blocking=True) for k, v in batch.items()}

    def run(self) -> int:
        """Train to the step count. Ctrl-C stops at the end of the step it lands in (all ranks at the
        same one), saves the state and returns 130; a second Ctrl-C stops at once and keeps the
        last state saved, never one with a step half applied (the discriminator updated, not the
        generator)."""
        bar = tqdm(total=self.total, initial=self.step, desc=self.stage, unit="step", disable=not self.rt.main, dynamic_ncols=True)
        log_every, val_every, ckpt_every = (int(self.scfg[k]) for k in ("log_every", "val_every", "ckpt_every"))
        last_val: dict[str, float] = {}
        saved = self.step
        t0, n0 = time.perf_counter(), self.step
        try:
            with ctrl_c_stops() as stop:
                for batch in self.batches():
                    if self.step >= self.total:
                        break
                    terms = self.train_step(batch)
                    self.step += 1
                    ips = (self.step - n0) * self.batch * self.rt.world / max(1e-9, time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{terms['loss']:.4f}", img_s=f"{ips:.1f}")
                    bar.update(1)
                    if self.step % log_every == 0:
                        self.log("train", {**terms, "images_per_s": ips})
                    done = self.step >= self.total
                    best = False
                    if self.step % val_every == 0 or done:
                        if self.rt.main:
                            last_val = self.validate(self.inference_model)
                            best = self._is_better(last_val)
                            self.log("val", last_val)
                            if self.inference_model is not self.task.model:
                                self.log("val_raw", self.validate(self.task.model, grid=False))
                        self.rt.barrier()
                    if self.step % ckpt_every == 0 or done:
                        if self.rt.main:
                            self.save(last_val, best)
                        saved = self.step
                        self.rt.barrier()
                    if self.rt.any_rank(stop.requested):
                        bar.close()
                        if self.rt.main:
                            if saved != self.step:
                                self.save(last_val, False)
                            print(f"interrupted at step {self.step}; state saved in {self.out} (continue with --resume)", file=sys.stderr)
                        return 130
        except KeyboardInterrupt:  # the second Ctrl-C, anywhere in a step
            bar.close()
            if self.rt.main:
                kept = f"the state saved at step {saved} is kept in {self.out} (continue with --resume)" if saved else "no state was saved yet"
                print(f"interrupted before step {self.step + 1} was done; {kept}", file=sys.stderr)
            return 130
        bar.close()
        if self.rt.main:
            self.average_last()
        if self.writer is not None:
            self.writer.close()
        if self.rt.main:
            print(f"{self.stage}: {self.step} steps, {self.param_count() / 1e6:.2f} M parameters; val {json.dumps({k: round(v, 4) for k, v in last_val.items()})}; checkpoints in {self.out}")
        return 0


# --- CLI -----------------------------------------------------------------------------------

RUN_FILES = ("state", "last", "best", "averaged")


def run_artefacts(out: Path) -> list[Path]:
    """The files of a run that a fresh start would overwrite: state, last, best, step-* checkpoints."""
    if not out.is_dir():
        return []
    found = [p for name in RUN_FILES for p in checkpoint_paths(out / name) if p.exists()]
    return found + sorted(out.glob("step-*.safetensors")) + sorted(out.glob("step-*.json"))


def check_run_dir(out: Path, resume: bool, overwrite: bool, main_rank: bool) -> bool:
    """Whether to resume. Refuses to start over an existing run unless ``overwrite`` (which removes
    its checkpoints, state, metrics and sample grids); with ``resume`` and no state yet (stopped
    before its first save) it starts from step 0."""
    found = run_artefacts(out)
    state = checkpoint_paths(out / "state")[0]
    if resume and overwrite:
        raise MaskelError("--resume and --overwrite contradict each other")
    if resume:
        if state.exists():
            return True
        if found:
            raise MaskelError(f"--resume: {out} has checkpoints but no training state (state.safetensors); "
                              "start again with --overwrite")  # fmt: skip
        print(f"--resume: no training state in {out} yet (stopped before its first save); starting from step 0", file=sys.stderr)
        return False
    if found and not overwrite:
        raise MaskelError(f"{out} already holds a training run ({', '.join(sorted({p.name for p in found})[:4])}...); "
                          "continue it with --resume or start again with --overwrite")  # fmt: skip
    if found and main_rank:
        for p in found:
            p.unlink(missing_ok=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
        for grid in (out / "samples").glob("step-*.png") if (out / "samples").is_dir() else ():
            grid.unlink(missing_ok=True)
    return False



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="maskel train", description="Train MaSkel stage 1 (X-ray MAE) or stage 2 (mask -> X-ray).")
    ap.add_argument("stage", choices=["stage1", "stage2"])
    ap.add_argument("--config", default="tiny", help=f"preset ({', '.join(presets())}) or a TOML file")
    ap.add_argument("--data", required=True, nargs="+", help="dataset directories (manifest.jsonl, or <i>/skeleton.png + label.png); several are trained on as one")
    ap.add_argument("--out", help="output directory (default runs/<stage>-<config>)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/state.safetensors (from step 0 if none was saved yet)")
    ap.add_argument("--overwrite", action="store_true", help="start again in an <out> that holds a run (its checkpoints are deleted)")
    ap.add_argument("--stage1", help="stage-1 checkpoint (required for stage2)")
    ap.add_argument("--augmented", nargs="+", help="stage1: also pre-train on these `maskel augment` folders (default: [stage1] augmented)")
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--batch-size", type=int, help="override the preset's (global) batch size")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--seed", type=int, help="override the preset's seed")
    ap.add_argument("--compile", action="store_true", help="torch.compile the trained model")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one config value (a TOML value), e.g. --set generator.radiograph_from_dxa=true; repeatable")
    ap.add_argument("--hold-out-poses", metavar="KINDS", help="comma-separated pose kinds kept out of training (a generalisation run)")
    ap.add_argument("--hold-out-yaw", metavar="LO:HI", help="camera yaw range in degrees kept out of training, e.g. 150:210")
    return ap.parse_args(argv)


def hold_out_from_args(args: argparse.Namespace, cfg: dict[str, Any]) -> HoldOut:
    """The config's [data] hold_out, replaced by the command line's when given."""
    hold = HoldOut.from_config(cfg["data"].get("hold_out"))
    kinds, yaw = hold.pose_kinds, hold.yaw_deg
    if args.hold_out_poses is not None:
        kinds = tuple(k.strip() for k in args.hold_out_poses.split(",") if k.strip())
    if args.hold_out_yaw is not None:
        try:
            lo, hi = (float(v) for v in args.hold_out_yaw.split(":"))
        except ValueError:
            raise MaskelError(f"--hold-out-yaw must be LO:HI in degrees, not {args.hold_out_yaw!r}") from None
        yaw = (lo, hi)
    return HoldOut(kinds, yaw)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["ddpm"], ["sr"]):  # the diffusion parts (maskel.diffusion), their own options
        from maskel.diffusion import ddpm, sr

        return {"ddpm": ddpm, "sr": sr}[argv[0]].main(argv[1:])
    args = parse_args(argv)
    rt = None
    try:
        cfg = apply_overrides(load_config(args.config), args.set)
        if args.steps is not None:
            cfg[args.stage]["steps"] = args.steps
        if args.batch_size is not None:
            cfg[args.stage]["batch_size"] = args.batch_size
        if args.seed is not None:
            cfg["seed"] = args.seed
        cfg.setdefault("seed", 0)
        args.out = args.out or f"runs/{args.stage}-{cfg['name']}"
        if args.stage == "stage1":  # real + diffusion-augmented X-rays (maskel.diffusion.augment)
            args.data = list(args.data) + list(args.augmented or cfg["stage1"].get("augmented", []))
        resume = check_run_dir(Path(args.out), args.resume, args.overwrite, int(os.environ.get("RANK", "0")) == 0)
        needs_stage1 = float(cfg["stage2"]["loss"].get("latent", 0)) > 0 or bool(cfg["generator"].get("quantize", True))
        if args.stage == "stage2" and needs_stage1 and not args.stage1:
            raise MaskelError("stage2 needs --stage1 <stage-1 checkpoint> (its latent is the target; only a config with latent = 0 and quantize = false trains without)")
        stage1_model, stage1_meta = None, None
        if args.stage == "stage2" and args.stage1:
            stage1_model, stage1_meta = load_mae(args.stage1, resolution=int(cfg["resolution"]))
        hold_out = hold_out_from_args(args, cfg)
        if hold_out:
            cfg["data"] = {**cfg["data"], "hold_out": hold_out.to_config()}
        rt = setup_runtime(args.device)
        data = load_paired_many(args.data, int(cfg["resolution"]), progress=rt.main, hold_out=hold_out)
        cfg = resolve_config(cfg, data, stage1_meta)
        place = Placement(rt.device, rt.world, channels_last=bool(cfg["train"].get("channels_last", True)),
                          amp=rt.device.type == "cuda" and bool(cfg["train"].get("amp", True)), compile=args.compile)  # fmt: skip
        torch.manual_seed(int(cfg["seed"]))  # the models' initial weights
        task = Stage1(cfg, place) if args.stage == "stage1" else Stage2(cfg, place, stage1_model)
        trainer = Trainer(task, cfg, data, Path(args.out), rt)
        if resume:
            trainer.resume()
        else:
            trainer.start_fresh()
        return trainer.run()
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if rt is not None and rt.world > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
