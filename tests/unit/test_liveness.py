"""Engine liveness from its process: dead, zombie and reused PIDs read as dead; other hosts are not judged."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from argus.adapters import liveness
from argus.adapters.liveness import process_alive, this_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def child():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = {**this_process(), "pid": process.pid, "start_ticks": liveness._stat(process.pid)[1]}
    yield process, identity
    if process.poll() is None:
        process.kill()
        process.wait()


def _until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_this_process_is_alive():
    assert process_alive(this_process()) is True


def test_a_killed_and_reaped_process_is_dead(child):
    process, identity = child
    assert process_alive(identity) is True
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process_alive(identity) is False


def test_a_killed_process_its_parent_has_not_reaped_yet_is_dead(child):
    process, identity = child
    process.send_signal(signal.SIGKILL)
    _until(lambda: liveness._stat(process.pid)[0] == "Z")  # a zombie still answers kill(pid, 0)
    assert process_alive(identity) is False


def test_a_reused_pid_is_not_the_engine():
    assert process_alive({**this_process(), "start_ticks": this_process()["start_ticks"] - 1}) is False


@pytest.mark.parametrize("identity", [
    {**this_process(), "host": "another-host"},
    {**this_process(), "pid_ns": "pid:[1]"},
    {**this_process(), "pid": "12"}, {**this_process(), "pid": True}, {**this_process(), "pid": -1},
    None, "garbage", {},
])
def test_a_process_elsewhere_or_unnamed_cannot_be_judged_from_here(identity):
    assert process_alive(identity) is None
