"""Run in Blender's real UI (not -b; under Xvfb with software OpenGL): what a user sees.

blender scene.blend --factory-startup -P ui_scenario.py -- --zip Z --server URL --mannequin server|PATH
    --out DIR [--skeleton] [--live-seconds S]

Steps are driven by bpy.app.timers (they fire in the UI): install the add-on, add and pose the
mannequin, look through the camera in Solid shading, press Generate (the real modal operator), take
screenshots with the X-ray shown, hidden, and behind at lower opacity; measure a 20 Hz probe
timer's intervals while a bone is rotated 5 times a second, with live mode off and then on; Add
skeleton and look from the side. Writes DIR/ui_results.json and DIR/*.png, then quits.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
import traceback

import bpy
from mathutils import Euler, Vector

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bl_setup import add_mannequin, clear_scene, install_addon, joint_bone  # noqa: E402

PROBE = 0.05  # s, the probe timer's interval
DRIVE = 0.2  # s between two bone rotations ("dragging")
MIN_SWINGS = 6  # a measurement lasts at least this many bone rotations...
MAX_MEASURE = 120.0  # ...unless the UI is so starved that this many seconds pass first
RAISE = 1.1  # rad about the upper arm's local Z (the mannequin's bone Z points forward): raises it sideways


def parse():
    p = argparse.ArgumentParser()
    for a in ("--zip", "--server", "--mannequin", "--out"):
        p.add_argument(a)
    p.add_argument("--skeleton", action="store_true")
    p.add_argument("--material-preview", action="store_true",
                   help="also a screenshot in Material Preview (EEVEE compiles for tens of seconds under software GL)")
    p.add_argument("--live-seconds", type=float, default=12.0)
    return p.parse_args(sys.argv[sys.argv.index("--") + 1 :])


ARGS = parse()
RESULTS: dict = {}


def view3d():
    win = bpy.context.window_manager.windows[0]
    area = max((a for a in win.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    return win, area, next(r for r in area.regions if r.type == "WINDOW")


def shot(name: str) -> str:
    win, area, region = view3d()
    path = os.path.join(ARGS.out, f"{name}.png")
    with bpy.context.temp_override(window=win, area=area, region=region):
        bpy.ops.screen.screenshot_area(filepath=path)
    RESULTS.setdefault("screenshots", []).append(path)
    return path


def measure(name, live_mod, seconds, pb, live_on):
    """Probe-timer intervals while a bone swings; live mode on or off."""
    scene = bpy.context.scene
    stamps: list[float] = []
    swings = [0]

    def probe():
        stamps.append(time.perf_counter())
        return PROBE

    def drive():
        swings[0] += 1
        pb.rotation_euler = Euler((0.0, 0.0, RAISE * (0.5 + 0.5 * math.sin(swings[0] * 0.7))))
        return DRIVE

    updates0 = live_mod.session.updates
    lat0 = len(live_mod.session.latencies)
    scene.maskel.live = live_on
    bpy.app.timers.register(probe, first_interval=PROBE)
    bpy.app.timers.register(drive, first_interval=DRIVE)
    t0 = time.perf_counter()

    def enough():  # the wall time asked for, and (on a loaded machine) at least a few swings and updates
        busy = swings[0] < MIN_SWINGS or (live_on and live_mod.session.updates - updates0 < 2)
        return time.perf_counter() - t0 >= seconds and not busy

    while not enough() and time.perf_counter() - t0 < MAX_MEASURE:
        yield 0.25
    bpy.app.timers.unregister(probe)
    bpy.app.timers.unregister(drive)
    elapsed = time.perf_counter() - t0
    scene.maskel.live = False
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    gaps_sorted = sorted(gaps)
    lat = live_mod.session.latencies[lat0:]
    phases = live_mod.session.phases[lat0:]
    RESULTS[name] = {
        "seconds": round(elapsed, 2), "probe_calls": len(stamps), "swings": swings[0],
        "interval_mean_ms": round(1000 * statistics.mean(gaps), 1) if gaps else None,
        "interval_p95_ms": round(1000 * gaps_sorted[int(0.95 * (len(gaps) - 1))], 1) if gaps else None,
        "interval_max_ms": round(1000 * max(gaps), 1) if gaps else None,
        "jitter_sd_ms": round(1000 * statistics.pstdev(gaps), 1) if len(gaps) > 1 else None,
        "live_updates": live_mod.session.updates - updates0,
        "live_rate_per_s": round((live_mod.session.updates - updates0) / elapsed, 2),
        "live_latency_mean_ms": round(1000 * statistics.mean(lat)) if lat else None,
        "live_error": live_mod.session.error,
        "live_phase_median_ms": {k: round(statistics.median(p[k] for p in phases)) for k in phases[0]} if phases else None,
    }  # fmt: skip


def script():
    name = install_addon(ARGS.zip)
    # Show the MaSkel panel on the sidebar's first tab for the screenshots (3.4 cannot switch tabs
    # from Python); the panel's own draw code is what runs.
    panel = sys.modules[name + ".panels"].VIEW3D_PT_maskel
    bpy.utils.unregister_class(panel)
    panel.bl_category = "Item"
    bpy.utils.register_class(panel)
    state = sys.modules[name + ".state"]
    live_mod = sys.modules[name + ".live"]
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.server_url = ARGS.server
    scene = bpy.context.scene
    clear_scene(scene)
    _, arm, jmap = add_mannequin(scene, ARGS.mannequin)
    pb = joint_bone(arm, jmap, "left_shoulder")
    pb.rotation_mode = "XYZ"
    pb.rotation_euler = Euler((0.0, 0.0, 0.5 * RAISE))
    cam = bpy.data.objects.new("ShotCam", bpy.data.cameras.new("ShotCam"))
    scene.collection.objects.link(cam)
    cam.location = (0.8, -5.0, 1.1)
    cam.rotation_euler = (Vector((0, 0, 0.9)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    cam.data.lens = 35
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 640, 480, 100
    scene.maskel.resolution = "256"

    win, area, region = view3d()
    space = area.spaces.active
    space.shading.type = "SOLID"
    space.region_3d.view_perspective = "CAMERA"
    space.show_region_ui = True
    for r in area.regions:
        if r.type == "UI" and hasattr(r, "active_panel_category"):
            r.active_panel_category = "MaSkel"
    with bpy.context.temp_override(window=win, area=area, region=region):
        bpy.ops.view3d.view_center_camera()
    yield 2.0
    shot("before_generate")

    t0 = time.perf_counter()
    with bpy.context.temp_override(window=win, area=area, region=region):
        res = bpy.ops.maskel.generate("INVOKE_DEFAULT")
    RESULTS["generate_invoke"] = sorted(res)
    progress_seen = set()
    while state.job is not None and time.perf_counter() - t0 < 300:
        progress_seen.add((round(state.progress, 2), state.message.split("...")[0]))
        yield 0.05
    RESULTS["generate_s"] = round(time.perf_counter() - t0, 2)
    RESULTS["progress_stages"] = sorted(progress_seen)
    RESULTS["generate_message"] = state.message
    overlay = next((o for o in scene.objects if o.get("maskel_plane") == cam.name), None)
    RESULTS["overlay"] = None if overlay is None else {
        "type": overlay.type, "display": overlay.empty_display_type, "image": overlay.data.name if overlay.data else None,
        "shading": space.shading.type, "depth": overlay.empty_image_depth,
    }  # fmt: skip
    yield 1.5
    shot("addon_solid_after_generate")
    if ARGS.material_preview:
        space.shading.type = "MATERIAL"
        yield 45.0
        shot("addon_material_preview_after_generate")
        space.shading.type = "SOLID"
        yield 1.5
    xray_image = bpy.data.images.get(f"MaSkel X-ray {cam.name}")
    if xray_image is not None:
        xray_image.save_render(os.path.join(ARGS.out, "xray_generated.png"))
    overlay.hide_viewport = True
    yield 1.5
    shot("overlay_hidden")
    overlay.hide_viewport = False
    scene.maskel.opacity, scene.maskel.in_front = 0.45, False
    yield 1.5
    shot("addon_behind_opacity45")
    scene.maskel.opacity, scene.maskel.in_front = 0.8, True
    yield 1.0

    yield from measure("jitter_live_off", live_mod, ARGS.live_seconds, pb, False)
    yield from measure("jitter_live_on", live_mod, ARGS.live_seconds, pb, True)
    # One more live update after a visible pose change, for the screenshot.
    scene.maskel.live = True
    pb.rotation_euler = Euler((0.0, 0.0, RAISE))
    n = live_mod.session.updates
    t0 = time.perf_counter()
    while live_mod.session.updates <= n and time.perf_counter() - t0 < 60:
        yield 0.1
    yield 1.5
    shot("addon_live_arm_raised")
    scene.maskel.live = False

    if ARGS.skeleton:
        with bpy.context.temp_override(window=win, area=area, region=region):
            bpy.ops.maskel.add_skeleton("INVOKE_DEFAULT")
        t0 = time.perf_counter()
        while not state.message.startswith("skeleton: ") or "waiting" in state.message:
            if time.perf_counter() - t0 > 600:
                break
            yield 0.25
        RESULTS["skeleton_message"] = state.message
        RESULTS["skeleton_objects"] = sum(1 for o in scene.objects if o.get("maskel_skeleton"))
        overlay.hide_viewport = True
        for ob in scene.objects:
            ob.select_set(False)
        arm.hide_set(True)  # its bone display would cover the skeleton
        space.overlay.show_relationship_lines = False
        r3d = space.region_3d
        r3d.view_perspective = "PERSP"
        r3d.view_rotation = Euler((math.pi / 2, 0.0, math.pi / 2)).to_quaternion()  # from +X: the left side
        r3d.view_location = (0.0, 0.0, 0.95)
        r3d.view_distance = 3.2
        pb.rotation_euler = Euler((0.0, 0.0, RAISE))  # the humerus follows the raised arm
        for ob in scene.objects:
            if ob.get("maskel_skeleton"):
                ob.show_in_front = True  # Object > Viewport Display > In Front
        yield 2.0
        shot("addon_skeleton_side_in_front")
        for ob in scene.objects:
            ob.show_in_front = False
        space.shading.show_xray = True
        space.shading.xray_alpha = 0.5
        yield 2.0
        shot("addon_skeleton_side_xray_shading")
        space.shading.show_xray = False
        for ob in scene.objects:
            if ob.get("maskel_skeleton"):
                ob.show_in_front = True
        r3d.view_rotation = Euler((math.pi / 2, 0.0, 0.0)).to_quaternion()  # from the front
        yield 2.0
        shot("addon_skeleton_front_in_front")


def main():
    gen = script()

    def step():
        try:
            return next(gen)
        except StopIteration:
            pass
        except Exception:
            RESULTS["error"] = traceback.format_exc()
        with open(os.path.join(ARGS.out, "ui_results.json"), "w") as f:
            json.dump(RESULTS, f, indent=1)
        bpy.ops.wm.quit_blender()
        return None

    bpy.app.timers.register(step, first_interval=1.0)


main()
