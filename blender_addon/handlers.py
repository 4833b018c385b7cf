"""Application handlers: keep the X-ray overlays on their camera frames, and feed live mode."""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import live, overlay


@persistent
def on_depsgraph_update(scene, depsgraph=None) -> None:
    # A refit writes to the overlay, which causes one more update; its signature then matches.
    overlay.refit_all(scene)
    live.mark_changed()


@persistent
def on_frame_change(scene, depsgraph=None) -> None:
    live.mark_changed()


@persistent
def on_load(*_args) -> None:
    live.stop()
    for scene in bpy.data.scenes:
        if scene.maskel.live:
            live.start()  # a file saved with live mode on resumes it
            break


HANDLERS = (
    (bpy.app.handlers.depsgraph_update_post, on_depsgraph_update),
    (bpy.app.handlers.frame_change_post, on_frame_change),
    (bpy.app.handlers.load_post, on_load),
)


def register() -> None:
    for lst, fn in HANDLERS:
        if fn not in lst:
            lst.append(fn)


def unregister() -> None:
    live.stop()
    for lst, fn in HANDLERS:
        if fn in lst:
            lst.remove(fn)
