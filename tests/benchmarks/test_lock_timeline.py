"""The device lock's timeline, read from the kernel's lock table while real processes hold the lock."""

import subprocess
import sys
import time

from benchmarks.lock_timeline import LockTimeline, holders, lock_key, summary

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX if sys.argv[2] == "exclusive" else fcntl.LOCK_SH)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def hold(path, mode: str, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode, str(seconds)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_holders_reads_the_lock_table_of_one_file(tmp_path):
    lock = tmp_path / "kernelarena-1-cuda0.lock"
    lock.touch()
    key = lock_key(lock)
    with open("/proc/locks") as f:
        assert holders(f.read(), key) == (0, 0)
    first, second = hold(lock, "shared", 5), hold(lock, "shared", 5)
    try:
        with open("/proc/locks") as f:
            assert holders(f.read(), key) == (0, 2)
    finally:
        first.kill(), second.kill(), first.wait(), second.wait()
    other = tmp_path / "other.lock"
    other.touch()
    held = hold(other, "exclusive", 5)
    try:
        with open("/proc/locks") as f:
            table = f.read()
        assert holders(table, lock_key(other)) == (1, 0) and holders(table, key) == (0, 0)
    finally:
        held.kill(), held.wait()
    # A waiter's line ("->") is not a hold.
    assert holders(f"1: FLOCK  ADVISORY  READ 7 {key} 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 8 {key} 0 EOF\n",
                   key) == (0, 1)


def test_the_timeline_adds_each_state_up_from_before_the_file_exists(tmp_path):
    lock = tmp_path / "kernelarena-1-cuda0.lock"
    timeline = LockTimeline(lock).start()
    time.sleep(0.3)  # no lock file yet: the run has not made it
    lock.touch()
    time.sleep(0.3)  # free
    hold(lock, "exclusive", 0.6).wait()
    hold(lock, "shared", 0.6).wait()
    seconds = timeline.stop()
    assert seconds["no lock file"] >= 0.2 and seconds["free"] >= 0.2, seconds
    assert seconds["exclusive"] >= 0.4 and seconds["shared"] >= 0.4, seconds  # each held 0.6 s
    assert "device lock: exclusive" in summary(seconds) and "shared only" in summary(seconds)
