"""ctrl_c_stops with real SIGINTs sent to this process."""

import os
import signal

import pytest

from maskel.interrupt import ctrl_c_stops


def test_first_ctrl_c_is_a_request_the_second_interrupts_and_the_old_handler_returns() -> None:
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_stops() as stop:
        stop.check()  # nothing pressed yet
        os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: only the flag is set
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C: at once, as the default handler would
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
