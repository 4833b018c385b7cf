"""Operators of the MaSkel panel: Generate X-ray (threaded), Cancel, server check, X-ray cameras,
Add mannequin, body-mesh override."""

import threading
import time

import bpy
from bpy.props import EnumProperty, StringProperty

from . import character as charmod
from . import mannequin, state, ui, xcameras
from . import skeleton as skeletonmod
from .core.client import ServerError, describe_health
from .pipeline import XrayError, XrayJob, xray_cameras
from .preferences import make_client


def _cameras(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    s = scene.maskel
    cams = xray_cameras(scene) if s.use_xray_cameras else []
    if cams:
        return cams
    cam = s.camera or scene.camera
    return [cam] if cam is not None else []


def _character(scene: bpy.types.Scene) -> bpy.types.Object:
    s = scene.maskel
    if s.character is not None:
        return s.character
    try:
        return charmod.find_character(scene)
    except ValueError as e:
        raise XrayError(f"choose the character in the MaSkel panel ({e})") from None


def make_job(scene: bpy.types.Scene, single_pass: bool = False) -> XrayJob:
    """The panel's settings as a job; ``single_pass`` (live mode) asks the server to draw once."""
    s = scene.maskel
    return XrayJob(scene, _character(scene), _cameras(scene), make_client(), resolution=int(s.resolution),
                   style=s.style, seed=s.seed, exclude_clothes=s.exclude_clothes,
                   sr=s.quality == "super_resolution", single_pass=single_pass)  # fmt: skip


class MASKEL_OT_generate(bpy.types.Operator):
    """Render the character's silhouette, get its X-ray from the MaSkel server and show it as an image
    filling the camera frame"""

    bl_idname = "maskel.generate"
    bl_label = "Generate X-ray"
    bl_options = {"REGISTER"}

    _timer = None
    _thread = None

    @classmethod
    def poll(cls, context):
        return context.scene is not None and state.job is None

    def _start(self, context) -> XrayJob | None:
        try:
            job = make_job(context.scene)
            job.prepare()  # removes its temporary folder itself when it fails
        except (XrayError, ServerError, ValueError, RuntimeError) as e:
            self.report({"ERROR"}, str(e))
            return None
        return job

    def execute(self, context):
        """Synchronous path (headless runs, scripts, and when no window is available)."""
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        s = context.scene.maskel
        try:
            job.fetch()
            shown = job.apply(s.opacity, s.in_front)
        except (ServerError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        finally:
            job.cleanup()
        self.report({"INFO"}, f"X-ray on {', '.join(p.name for p in shown)}")
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        state.job = job
        state.progress, state.message = job.progress, f"{job.stage}..."
        self._shown = None
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=job.fetch_safe, daemon=True)
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = state.job
        s = context.scene.maskel
        if event.type == "ESC":
            job.cancel.set()
        if job.cancel.is_set():
            self._end(context, "cancelled")
            self.report({"WARNING"}, "X-ray generation cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._thread.is_alive():
            self._show(context, job.progress, f"{job.stage}... {time.monotonic() - self._t0:.0f} s")
            return {"PASS_THROUGH"}
        if job.error:
            self._end(context, job.error)
            self.report({"ERROR"}, job.error)
            return {"CANCELLED"}
        try:
            shown = job.apply(s.opacity, s.in_front)
        except (OSError, RuntimeError) as e:
            self._end(context, str(e))
            self.report({"ERROR"}, f"cannot load the X-ray: {e}")
            return {"CANCELLED"}
        self._end(context, f"done in {time.monotonic() - self._t0:.1f} s")
        self.report({"INFO"}, f"X-ray on {', '.join(p.name for p in shown)}")
        return {"FINISHED"}

    def _show(self, context, progress: float, message: str) -> None:
        """Update the progress bar, redrawing only the sidebar and only when its text changes (a full
        viewport redraw costs ~1 s under software OpenGL)."""
        if (progress, message) == self._shown:
            return
        self._shown = (progress, message)
        state.progress, state.message = progress, message  # module state: a scene property would redraw everything
        ui.redraw_sidebars(context)

    def _end(self, context, message: str) -> None:
        context.window_manager.event_timer_remove(self._timer)
        state.progress, state.message = 0.0, message
        state.job.cleanup()  # a cancelled worker may still finish writing; it only touches the temp dir
        state.job = None
        ui.redraw_sidebars(context)


class MASKEL_OT_cancel(bpy.types.Operator):
    """Stop waiting for the X-ray (the server may finish the request; its answer is ignored)"""

    bl_idname = "maskel.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return state.job is not None

    def execute(self, context):
        state.job.cancel.set()
        return {"FINISHED"}


class MASKEL_OT_check_server(bpy.types.Operator):
    """Ask the MaSkel server for its health"""

    bl_idname = "maskel.check_server"
    bl_label = "Check server"

    def execute(self, context):
        try:
            h = make_client().health(timeout=3.0)
        except ServerError as e:
            state.server_status = str(e)
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        state.server_status = describe_health(h)
        self.report({"INFO"}, f"MaSkel server OK: {state.server_status}")
        return {"FINISHED"}


class MASKEL_OT_create_cameras(bpy.types.Operator):
    """Create (or re-frame) orthographic front and side cameras around the character"""

    bl_idname = "maskel.create_cameras"
    bl_label = "Create X-ray cameras"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = context.scene
        try:
            ch = _character(scene)
        except XrayError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        meshes = charmod.body_meshes(ch, scene, scene.maskel.exclude_clothes)
        if not meshes:
            self.report({"ERROR"}, f"{ch.name!r} has no body meshes")
            return {"CANCELLED"}
        cams = xcameras.create_xray_cameras(scene, meshes, int(scene.maskel.resolution))
        self.report({"INFO"}, f"cameras: {', '.join(c.name for c in cams)}")
        return {"FINISHED"}


class MASKEL_OT_add_mannequin(bpy.types.Operator):
    """Add the rigged, skinned MaSkel mannequin (from the server, or a mannequin JSON file)"""

    bl_idname = "maskel.add_mannequin"
    bl_label = "Add MaSkel mannequin"
    bl_options = {"REGISTER", "UNDO"}

    source: EnumProperty(name="Source", default="SERVER", items=[
        ("SERVER", "Server", "GET /v1/mannequin from the MaSkel server"),
        ("FILE", "File", "A JSON file written by `maskel mannequin --out FILE`"),
    ])  # fmt: skip
    filepath: StringProperty(subtype="FILE_PATH", default="")
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context, event):
        if self.source == "FILE" and not self.filepath:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        try:
            if self.source == "FILE":
                data = mannequin.load_file(bpy.path.abspath(self.filepath))
            else:
                data = make_client().mannequin()
            arm = mannequin.build(data, context.collection or context.scene.collection)
        except (ServerError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        context.scene.maskel.character = arm
        self.report({"INFO"}, f"added {arm.name}")
        return {"FINISHED"}


class MASKEL_OT_add_skeleton(bpy.types.Operator):
    """Add the phantom's bones inside the character, each parented to its rig bone (they follow the
    animation with no further server call)"""

    bl_idname = "maskel.add_skeleton"
    bl_label = "Add skeleton"
    bl_options = {"REGISTER"}  # undo: pushed once the meshes exist (see invoke)

    def _rig(self, context):
        try:
            arm = charmod.find_armature(_character(context.scene))
        except XrayError as e:
            raise skeletonmod.SkeletonError(str(e)) from None
        if arm is None:
            raise skeletonmod.SkeletonError("the character has no armature: Add skeleton needs a rig")
        resolved, joints = skeletonmod.rig_request(arm)
        return arm, resolved, joints

    def execute(self, context):
        try:
            arm, resolved, joints = self._rig(context)
            bones = skeletonmod.fetch(make_client(), joints)
        except (skeletonmod.SkeletonError, ServerError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return self._build(context, arm, resolved, bones)

    def _build(self, context, arm, resolved, bones):
        obs = skeletonmod.build(arm, resolved, bones, context.scene.collection)
        if not obs:
            self.report({"ERROR"}, f"none of the skeleton's segments maps to a bone of {arm.name!r}")
            return {"CANCELLED"}
        state.message = f"skeleton: {len(obs)} bones on {arm.name}"
        self.report({"INFO"}, state.message)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            arm, resolved, joints = self._rig(context)
            client = make_client()
        except (skeletonmod.SkeletonError, ServerError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        result: dict = {}

        def work():
            try:
                result["bones"] = skeletonmod.fetch(client, joints)
            except (ServerError, ValueError) as e:
                result["error"] = str(e)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        state.message = "skeleton: waiting for the server..."
        arm_name = arm.name

        def poll():  # main thread (bpy.app.timers): build the meshes once the worker is done
            if worker.is_alive():
                return 0.25
            arm_now = bpy.data.objects.get(arm_name)
            if "error" in result or arm_now is None:
                state.message = f"skeleton: {result.get('error', 'the armature was deleted')}"
            else:
                n = len(skeletonmod.build(arm_now, resolved, result["bones"], bpy.context.scene.collection))
                state.message = f"skeleton: {n} bones on {arm_name}"
                bpy.ops.ed.undo_push(message="Add skeleton")  # the meshes arrive after the operator ended
            ui.redraw_sidebars()
            return None

        bpy.app.timers.register(poll, first_interval=0.25)
        return {"FINISHED"}


class MASKEL_OT_toggle_body_mesh(bpy.types.Operator):
    """Include or exclude this mesh from the silhouette (sets its maskel_body property)"""

    bl_idname = "maskel.toggle_body_mesh"
    bl_label = "Toggle body mesh"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()

    def execute(self, context):
        ob = bpy.data.objects.get(self.name)
        if ob is None:
            return {"CANCELLED"}
        ob["maskel_body"] = not charmod.is_body(ob, context.scene.maskel.exclude_clothes)
        return {"FINISHED"}


CLASSES = (MASKEL_OT_generate, MASKEL_OT_cancel, MASKEL_OT_check_server, MASKEL_OT_create_cameras,
           MASKEL_OT_add_mannequin, MASKEL_OT_add_skeleton, MASKEL_OT_toggle_body_mesh)  # fmt: skip


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)


def unregister() -> None:
    if state.job is not None:
        state.job.cancel.set()
        state.job = None
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
