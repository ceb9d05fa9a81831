"""A signal is never lost (fashion_transfer/framework/interrupt.py)."""

import gc
import os
import signal

import pytest

from fashion_transfer.framework import interrupt


class SlowFinaliser:
    """Like a connection that closes itself when collected: SIGTERM arrives meanwhile."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_whose_exception_a_finaliser_swallowed_still_stops_the_run(interrupt_installed):
    interrupt.check()  # nothing arrived yet
    SlowFinaliser()  # Python prints "Exception ignored in ..." and goes on
    gc.collect()
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()


def test_ctrl_c_and_sigterm_both_interrupt(interrupt_installed):
    for number in (signal.SIGINT, signal.SIGTERM):
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), number)  # delivered before the next line runs
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        interrupt._requested.clear()
