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


def test_a_signal_in_a_held_block_waits_until_the_block_is_done(interrupt_installed):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt.held():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the rest of the block")
            with interrupt.held():  # an inner block does not end the wait
                done.append("the inner block")
            done.append("after the inner block")
    assert done == ["the rest of the block", "the inner block", "after the inner block"]


def test_a_held_block_s_own_error_goes_on_and_the_signal_is_still_remembered(
    interrupt_installed,
):
    with pytest.raises(OSError, match="disk full"):
        with interrupt.held():
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError("disk full")
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()
