"""Live X-ray: while the panel's toggle is on, a new X-ray is requested whenever the pose, the frame
or the camera changes, so the overlay follows bone dragging and timeline scrubbing.

Handlers (depsgraph update, frame change) only raise a flag; a ``bpy.app.timers`` tick compares a
cheap signature of what the X-ray depends on (pose bone matrices, object and camera matrices, frame)
with the one last sent, so our own silhouette renders and overlay updates never trigger requests.
At most one request is in flight: changes during it are coalesced into one newer request sent when
it returns (no queue builds up behind a slow server); an answer from an older session (toggle
switched, Generate pressed) is dropped. Requests are at least ``MIN_INTERVAL`` apart.
"""

from __future__ import annotations

import threading
import time

import bpy

from . import state, ui

TICK = 0.05  # seconds between checks while live mode is on
MIN_INTERVAL = 0.1  # seconds between two requests (debounce while a bone is dragged)


class LiveSession:
    """State of live mode (module-level, not saved)."""

    def __init__(self) -> None:
        self.generation = 0  # bumped when live mode starts or stops; older answers are dropped
        self.maybe_changed = True
        self.last_signature: tuple | None = None
        self.last_start = 0.0
        self.job = None
        self.job_generation = -1
        self.thread: threading.Thread | None = None
        self.updates = 0  # X-rays shown
        self.dropped = 0  # answers dropped as stale
        self.latencies: list[float] = []  # request start -> overlay shown, seconds
        self.phases: list[dict[str, float]] = []  # per update: prepare / wait / apply / server milliseconds
        self.error: str | None = None


session = LiveSession()


def signature(scene: bpy.types.Scene, character: bpy.types.Object, cameras: list[bpy.types.Object]) -> tuple:
    """What the X-ray depends on, as plain floats: any change means a new request."""
    from . import character as charmod

    parts: list = [scene.frame_current, scene.render.resolution_x, scene.render.resolution_y]
    arm = charmod.find_armature(character)
    if arm is not None:
        parts.append(tuple(arm.matrix_world.col[3]))
        for pb in arm.pose.bones:
            parts.append(tuple(tuple(row) for row in pb.matrix))
    for ob in [character, *cameras]:
        parts.append(tuple(tuple(row) for row in ob.matrix_world))
    return tuple(parts)


def mark_changed(*_args) -> None:
    """Handler body (depsgraph update / frame change): cheap, the timer does the checking."""
    session.maybe_changed = True


def start() -> None:
    session.generation += 1
    session.maybe_changed = True
    session.last_signature = None
    session.error = None
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK)


def stop() -> None:
    session.generation += 1
    if session.job is not None:
        session.job.cancel.set()
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    _finish_job(drop=True)


def _finish_job(drop: bool) -> None:
    job = session.job
    if job is None:
        return
    session.job = None
    if drop or session.job_generation != session.generation:
        session.dropped += 1
    elif job.error:
        session.error = job.error
        state.message = f"live X-ray: {job.error}"
    else:
        s = job.scene.maskel
        try:
            t_apply = time.monotonic()
            job.apply(s.opacity, s.in_front)
            session.updates += 1
            session.latencies.append(time.monotonic() - job.started)
            session.phases.append({
                "prepare_ms": 1000 * (job.started - job.prepare_start), "wait_ms": 1000 * (t_apply - job.started),
                "apply_ms": 1000 * (time.monotonic() - t_apply),
                "server_ms": float(job.views[0].timings.get("total_ms", 0.0)) if job.views else 0.0,
            })  # fmt: skip
            state.message = f"live X-ray: {session.updates} updates, last {session.latencies[-1] * 1000:.0f} ms"
        except (OSError, RuntimeError) as e:
            session.error = state.message = f"live X-ray: cannot load the X-ray ({e})"
    job.cleanup()
    ui.redraw_sidebars()


def tick() -> float | None:
    """One timer step; returns the delay to the next one (None stops the timer)."""
    scene = bpy.context.scene
    if scene is None or not scene.maskel.live:
        stop()
        return None
    if session.job is not None:
        if session.thread is not None and session.thread.is_alive():
            return TICK
        _finish_job(drop=False)
    if state.job is not None or not session.maybe_changed:
        return TICK  # a Generate is running, or nothing happened
    wait = MIN_INTERVAL - (time.monotonic() - session.last_start)
    if wait > 0:
        return max(wait, 0.01)
    session.maybe_changed = False
    from .core.client import ServerError
    from .operators import make_job
    from .pipeline import XrayError

    try:
        job = make_job(scene, single_pass=True)  # even from a --mirror-average server: more updates a second
        sig = signature(scene, job.character, job.cameras)
        if sig == session.last_signature:
            job.cleanup()
            return TICK
        job.prepare_start = time.monotonic()
        job.prepare()
    except (XrayError, ServerError, ValueError, RuntimeError) as e:
        session.error = state.message = f"live X-ray: {e}"
        ui.redraw_sidebars()
        return TICK
    except Exception as e:  # a timer that raises is unregistered without a word: say why instead
        session.error = state.message = f"live X-ray stopped: {e}"
        scene.maskel.live = False
        return None
    session.last_signature = sig
    session.last_start = job.started = time.monotonic()
    session.job, session.job_generation = job, session.generation
    session.thread = threading.Thread(target=job.fetch_safe, daemon=True)
    session.thread.start()
    return TICK
