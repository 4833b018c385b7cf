"""Ctrl-C as a request to stop at the loop's next safe point, not an exception raised anywhere.

Python turns SIGINT into a KeyboardInterrupt raised at whatever bytecode runs next, often deep in
a library (torch's first call, tqdm, an import). In `maskel generate` that was seen to end the
process by SIGINT (status -2, 1 run in 40) although the command had caught the interrupt, printed
its message and returned 130. A long loop instead runs under `ctrl_c_stops()`: the first Ctrl-C
only sets a flag, the loop calls `check()` between units of work, which raises KeyboardInterrupt
from the loop's own frame; a second Ctrl-C interrupts at once, as the default handler would.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequest:
    """Whether Ctrl-C was pressed since the loop started."""

    def __init__(self) -> None:
        self.requested = False

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt here if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def ctrl_c_stops() -> Iterator[StopRequest]:
    """SIGINT sets the yielded request's flag until the block ends (then the old handler is back).

    Off the main thread (where signal handlers cannot be set) the request simply never fires.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.signal(signal.SIGINT, request._on_sigint)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
