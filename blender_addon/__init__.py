"""MaSkel X-ray: a whole-body X-ray of a posed character, from its silhouette, by a local MaSkel server.

One zip for every version: Blender 3.4-4.1 Edit > Preferences > Add-ons > Install; Blender 4.2+
(incl. 5.0) Get Extensions > Install from Disk.
Headless batch: ``blender -b scene.blend --python-exit-code 1 -P <add-on dir>/batch.py -- --frames 1-48 --out DIR``.
"""

bl_info = {
    "name": "MaSkel X-ray",
    "author": "MaSkel for Blender contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D Viewport > Sidebar > MaSkel",
    "description": "Whole-body X-ray of a posed character from its silhouette (local MaSkel server)",
    "category": "3D View",
}



def _modules():
    # Imported here, not at the top, so that `blender_addon.core` and `blender_addon.build` stay
    # importable by plain Python (tests, build) where bpy does not exist.
    from . import handlers, operators, panels, preferences, properties

    return (properties, preferences, operators, panels, handlers)


def register() -> None:
    for m in _modules():
        m.register()


def unregister() -> None:
    for m in reversed(_modules()):
        m.unregister()
