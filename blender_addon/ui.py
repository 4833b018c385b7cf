"""Small UI helpers shared by operators and handlers."""

from __future__ import annotations

import bpy


def redraw_sidebars(context=None) -> None:
    """Redraw the 3D Viewport sidebars (where the MaSkel panel lives), not the viewports themselves."""
    wm = (context or bpy.context).window_manager
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                for region in area.regions:
                    if region.type == "UI":
                        region.tag_redraw()
