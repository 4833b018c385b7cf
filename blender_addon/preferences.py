"""Add-on preferences: server URL, timeout, token, and an optional local server child process."""

import atexit
import os
import tempfile
import threading

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from . import state
from .core.client import MaskelClient, ServerError, describe_health, is_loopback
from .core.localserver import LocalServer

ADDON_ID = __package__


def get_prefs():
    """This add-on's preferences, or None when it is not enabled (e.g. loaded by batch.py)."""
    addon = bpy.context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def make_client() -> MaskelClient:
    """A client from the preferences, else the defaults."""
    prefs = get_prefs()
    url = prefs.server_url if prefs else "http://127.0.0.1:8765"
    timeout = prefs.timeout if prefs else 120.0
    token = prefs.token if prefs else ""
    if not is_loopback(url) and not getattr(bpy.app, "online_access", True):
        raise ServerError(f"{url} is not on this machine and Blender's online access is off "
                          "(Preferences > System > Network)", "offline")  # fmt: skip
    return MaskelClient(url, timeout=timeout, token=token or None)


def stop_local_server() -> None:
    if state.local_server is not None:
        state.local_server.stop()
        state.local_server = None


atexit.register(stop_local_server)  # Blender runs atexit handlers on quit


class MASKEL_OT_start_server(bpy.types.Operator):
    """Start `python -m maskel serve` as a child process and point the add-on at it"""

    bl_idname = "maskel.start_server"
    bl_label = "Start local server"

    def execute(self, context):
        prefs = get_prefs()
        stop_local_server()
        log = os.path.join(tempfile.gettempdir(), f"maskel-serve-{prefs.port}.log")
        srv = LocalServer(bpy.path.abspath(prefs.python_path), prefs.port, bpy.path.abspath(prefs.checkpoint),
                          prefs.token, log_path=log, sr_checkpoint=bpy.path.abspath(prefs.sr_checkpoint))  # fmt: skip
        state.local_server = srv
        prefs.server_url = srv.url
        if bpy.app.background:  # timers never fire headless: wait here
            return self._finish(srv, log)
        state.server_status = "starting..."
        result: dict = {}
        worker = threading.Thread(target=self._start, args=(srv, prefs.start_wait, result), daemon=True)
        worker.start()

        def poll():  # main thread, via bpy.app.timers: report when the worker is done
            if worker.is_alive():
                return 0.5
            state.server_status = result.get("status", "failed")
            for area in getattr(bpy.context.screen, "areas", []):
                area.tag_redraw()
            return None

        bpy.app.timers.register(poll, first_interval=0.5)
        self.report({"INFO"}, f"starting the MaSkel server at {srv.url} (log: {log})")
        return {"FINISHED"}

    @staticmethod
    def _start(srv: LocalServer, wait: float, result: dict) -> None:
        try:
            result["status"] = describe_health(srv.start(wait=wait))
        except ServerError as e:
            result["status"] = f"failed: {e}"
            state.local_server = None

    def _finish(self, srv: LocalServer, log: str):
        try:
            state.server_status = describe_health(srv.start(wait=get_prefs().start_wait))
        except ServerError as e:
            state.local_server = None
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"MaSkel server running at {srv.url} (log: {log})")
        return {"FINISHED"}


class MASKEL_OT_stop_server(bpy.types.Operator):
    """Stop the local server started by the add-on"""

    bl_idname = "maskel.stop_server"
    bl_label = "Stop local server"

    @classmethod
    def poll(cls, context):
        return state.local_server is not None

    def execute(self, context):
        stop_local_server()
        state.server_status = "stopped"
        return {"FINISHED"}


class MaskelPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    server_url: StringProperty(name="Server URL", default="http://127.0.0.1:8765")
    timeout: FloatProperty(name="Timeout (s)", default=120.0, min=1.0, max=3600.0)
    token: StringProperty(name="Token", subtype="PASSWORD", default="",
                          description="Sent as 'Authorization: Bearer' (needed when the server has --token)")  # fmt: skip
    python_path: StringProperty(name="Python with maskel", subtype="FILE_PATH", default="",
                                description="A Python interpreter that has the maskel package installed")  # fmt: skip
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH", default="",
                               description="Stage-2 .safetensors (empty: the server's default model)")  # fmt: skip
    sr_checkpoint: StringProperty(name="SR checkpoint", subtype="FILE_PATH", default="",
                                  description="Super-resolution .safetensors (python -m maskel.train sr) for the "
                                  "Super-resolution quality (empty: none)")  # fmt: skip
    port: IntProperty(name="Port", default=8765, min=1024, max=65535)
    start_wait: FloatProperty(name="Start wait (s)", default=120.0, min=5.0)

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "server_url")
        col.prop(self, "timeout")
        col.prop(self, "token")
        box = col.box()
        box.label(text="Local server")
        box.prop(self, "python_path")
        box.prop(self, "checkpoint")
        box.prop(self, "sr_checkpoint")
        row = box.row()
        row.prop(self, "port")
        row.prop(self, "start_wait")
        row = box.row()
        row.operator(MASKEL_OT_start_server.bl_idname, icon="PLAY")
        row.operator(MASKEL_OT_stop_server.bl_idname, icon="PAUSE")
        box.label(text=f"Status: {state.server_status}")


CLASSES = (MASKEL_OT_start_server, MASKEL_OT_stop_server, MaskelPreferences)


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)


def unregister() -> None:
    stop_local_server()
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
