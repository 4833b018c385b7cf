"""Session state shared by operators and panels (not saved in .blend files)."""

from __future__ import annotations

from typing import Any

job: Any = None  # the running pipeline.XrayJob, if any
local_server: Any = None  # core.localserver.LocalServer started from the preferences
server_status: str = "not checked"
progress: float = 0.0  # of the running Generate (shown by the panel)
message: str = ""  # the panel's status line
