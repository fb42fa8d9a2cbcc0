"""A job's processes, found, watched and killed through psutil.

Promises:

* :func:`pid_alive` counts a zombie as dead: an exited process whose parent has not reaped it
  yet runs nothing.
* A job process leads its own process group and session. Its kill takes the group, every
  process of the session (Ray puts its processes in groups of their own), and every
  descendant :class:`JobProcess` has seen, so a grandchild that left the session
  (``setsid``, a daemonising tool) is killed with it too.
* A signal goes to a group only while the job process still leads it, so a reused pid never
  makes us signal a stranger (psutil checks the same for each remembered process).
* :meth:`JobProcess.kill` returns once no live process of the job is left, or after its wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

__all__ = [
    "PROJECT_ROOT",
    "JobProcess",
    "child_env",
    "kill_descendants",
    "kill_group",
    "pid_alive",
    "session_members",
    "signal_group",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_POLL_S = 0.02


def child_env() -> dict[str, str]:
    """The environment of the worker and job processes: this project first on the path."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach log.txt as they are printed
    return env


def _running(proc: psutil.Process) -> bool:
    """Whether ``proc`` (the very process, not a reuse of its pid) runs and is no zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as dead)."""
    try:
        return _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return _members(os.getpgid, pgid)


def session_members(sid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in session ``sid``, whatever their process group."""
    return _members(os.getsid, sid)


def _members(id_of, wanted: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if id_of(proc.pid) == wanted and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def signal_group(pid: int, pgid: int | None, signum: int) -> None:
    """Signal the job's process group, only while ``pid`` still leads it (pids get reused)."""
    if pgid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pgid:
            os.killpg(pgid, signum)


def kill_group(pgid: int, others: Iterable[psutil.Process] = (), wait_s: float = 5.0) -> None:
    """SIGKILL every process in ``pgid``, in the session it leads, and in ``others``; wait
    until none is left alive.

    The session too: a job process is started in a session of its own (its pid is its group
    and session id), and Ray's processes put themselves in process groups of their own inside
    it, beyond a kill of the group.

    Not :func:`psutil.wait_procs`: it waits for a zombie to be reaped, and a grandchild
    re-parented to an init that does not reap would hold it for its whole timeout.
    """
    others = list(others)
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        left = [proc for proc in others if _running(proc)] + session_members(pgid)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if (not left and not group_members(pgid)) or time.monotonic() > deadline:
            return
        time.sleep(_POLL_S)


def kill_descendants(wait_s: float = 5.0) -> None:
    """SIGKILL every descendant of this process and wait until none is left alive.

    The job process calls it on its way out, while its descendants are still its own (once it
    has exited they are re-parented and out of its tree's reach).
    """
    with contextlib.suppress(psutil.Error):
        found = psutil.Process().children(recursive=True)
        for proc in found:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        deadline = time.monotonic() + wait_s
        while any(_running(proc) for proc in found) and time.monotonic() < deadline:
            time.sleep(_POLL_S)


class JobProcess:
    """The process tree of one job: its leader (pid = pgid) and each descendant seen.

    Args:
        pid: The job process, which leads its own process group. It need not be our child
            (a worker adopts the job of a worker that died); when it is, it is never reaped
            here, so its pid and group stay the job's until the caller waits for it.
    """

    def __init__(self, pid: int) -> None:
        self.pid = self.pgid = pid
        try:
            self._leader: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._leader = None
        self._seen: dict[int, psutil.Process] = {}

    def alive(self) -> bool:
        """Whether the job process still runs (exited but unreaped counts as ended)."""
        return self._leader is not None and _running(self._leader)

    def remember_descendants(self) -> None:
        """Note every current descendant, so it is killed with the job even if it leaves the
        process group or is re-parented once the job process ends."""
        if self._leader is None:
            return
        with contextlib.suppress(psutil.Error):
            for proc in self._leader.children(recursive=True):
                self._seen.setdefault(proc.pid, proc)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the job's process group and to every descendant seen."""
        self.remember_descendants()
        signal_group(self.pid, self.pgid, signum)
        for proc in self._seen.values():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signum)

    def kill(self, wait_s: float = 5.0) -> None:
        """SIGKILL the whole tree and wait until none of it is left alive."""
        self.remember_descendants()
        kill_group(self.pgid, self._seen.values(), wait_s=wait_s)
