"""Tests for a job's processes through psutil (training/jobs/process.py): zombies count as
dead, and a tree is signalled and killed whole, a grandchild outside the group included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil

from training.jobs.process import JobProcess, kill_group, pid_alive

# A job-like leader in its own session: starts a grandchild in yet another session (so a
# killpg of the leader's group misses it), prints the grandchild's pid, then waits.
LEADER = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
    " start_new_session=True)\n"
    "print(g.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def start_leader() -> tuple[subprocess.Popen, int]:
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    grandchild = int(leader.stdout.readline())
    return leader, grandchild


def test_an_exited_unreaped_child_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, still unreaped
    assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    assert not pid_alive(child.pid)
    assert not JobProcess(child.pid).alive()
    assert child.wait() == 0
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())


def test_kill_takes_the_group_and_a_grandchild_that_left_it() -> None:
    leader, grandchild = start_leader()
    try:
        assert os.getpgid(grandchild) != leader.pid
        job = JobProcess(leader.pid)
        assert job.alive()
        job.kill(wait_s=10)
        assert not job.alive()
        assert not pid_alive(grandchild)
        assert leader.wait() == -signal.SIGKILL
    finally:
        leader.kill()
        leader.wait()
        leader.stdout.close()
        if pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_a_signal_reaches_the_grandchild_outside_the_group() -> None:
    leader, grandchild = start_leader()
    try:
        watched = psutil.Process(grandchild)
        JobProcess(leader.pid).signal(signal.SIGTERM)
        assert leader.wait(timeout=10) == -signal.SIGTERM
        psutil.wait_procs([watched], timeout=10)  # not our child: no exit status to read
        assert not pid_alive(grandchild)
    finally:
        leader.kill()
        leader.wait()
        leader.stdout.close()
        if pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_kill_group_alone_misses_what_left_the_group() -> None:
    # Why JobProcess remembers descendants: a process-group kill does not reach them.
    leader, grandchild = start_leader()
    try:
        kill_group(leader.pid, wait_s=10)
        assert leader.wait(timeout=10) == -signal.SIGKILL
        assert pid_alive(grandchild)
    finally:
        leader.stdout.close()
        if pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_kill_group_takes_what_left_the_group_but_not_the_session() -> None:
    # Ray's processes put themselves in process groups of their own, inside the job's session.
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
            " process_group=0)\n"
            "print(g.pid, flush=True)\n"
            "time.sleep(300)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    grandchild = int(leader.stdout.readline())
    try:
        assert os.getpgid(grandchild) != leader.pid
        assert os.getsid(grandchild) == leader.pid
        kill_group(leader.pid, wait_s=10)
        assert leader.wait(timeout=10) == -signal.SIGKILL
        assert not pid_alive(grandchild)
    finally:
        leader.stdout.close()
        if pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)
