"""A signal is never lost (fashion_transfer/framework/interrupt.py)."""

import gc
import os
import signal
import sys

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


def _store_that_signals(path, number):
    """A SQLite store (as MLflow's and Optuna's are, through SQLAlchemy) whose every write
    statement brings `number` to this process while SQLAlchemy is in the middle of it."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE metric (step INTEGER)"))

    @sqlalchemy.event.listens_for(engine, "before_cursor_execute")
    def signal_meanwhile(*args):
        os.kill(os.getpid(), number)

    return sqlalchemy, engine


def test_a_signal_during_a_database_write_waits_for_the_write_and_leaves_no_lock(
    interrupt_installed, tmp_path
):
    sqlalchemy, engine = _store_that_signals(tmp_path / "store.db", signal.SIGINT)
    try:
        with engine.begin() as connection:  # the write is not cut in two ...
            connection.execute(sqlalchemy.text("INSERT INTO metric VALUES (1)"))
    except KeyboardInterrupt:
        pytest.fail("the signal cut the database write in two")
    with pytest.raises(KeyboardInterrupt):  # ... and the run's next check stops it
        interrupt.check()
    engine.dispose()

    other = sqlalchemy.create_engine(
        f"sqlite:///{tmp_path / 'store.db'}", connect_args={"timeout": 0.5}
    )
    with other.begin() as connection:  # marking the run KILLED: the store is not locked
        connection.execute(sqlalchemy.text("INSERT INTO metric VALUES (2)"))
        steps = connection.execute(sqlalchemy.text("SELECT step FROM metric")).scalars()
        assert sorted(steps) == [1, 2]
    other.dispose()


def test_a_second_signal_during_a_database_call_interrupts_at_once(interrupt_installed, tmp_path):
    sqlalchemy, engine = _store_that_signals(tmp_path / "store.db", signal.SIGTERM)
    interrupt._requested.set()  # the first signal came earlier and is waiting for a check
    with pytest.raises(KeyboardInterrupt):
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("INSERT INTO metric VALUES (1)"))
    engine.dispose()


def test_a_signal_outside_database_code_still_interrupts_at_once(interrupt_installed):
    assert not interrupt._in_database_call(sys._getframe())
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
