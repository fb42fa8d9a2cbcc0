"""Ray as a second engine for jobs: where it is, whether it answers, and one session per job.

The local job runner stays the orchestrator. A job whose workspace (or environment) sets
``ray_address`` hands its heavy part to Ray and still reports progress, results and failures
through its own :class:`training.jobs.JobContext`; everything else is as without Ray.

Promises:
- :func:`engine_address` is the ``ray_address`` setting in force (``SMEARLAB_RAY_ADDRESS``, then
  the workspace's value): None (run here), ``local``, ``auto`` or ``host:port``.
- :func:`check_workers` refuses more than one training worker without Ray, before a run is
  queued and again when it starts.
- :func:`engine_note` says, for the pages, where each kind of job runs; it never imports Ray.
- :func:`require_ray` refuses, with the install command, where Ray is not installed.
- :func:`probe` answers within its timeout (5 s): ``host:port`` must accept a TCP connection,
  ``auto`` must find a running cluster; otherwise :class:`ClusterUnreachable` names the
  address and what to do, before ``ray.init`` is ever called.
- :func:`ray_session` connects (or starts a local Ray), gives back the SIGTERM handler that
  ``ray.init`` replaces (so a cancel still stops the job), and shuts Ray down on the way out,
  whatever happened. Inside a process already connected to Ray (a test module's instance) it
  uses that connection and leaves it up.
- :func:`stream_with_cancel` waits on a blocking Ray iterator with timeouts, polling
  ``should_stop`` between them, so a cancel marker ends the wait within one poll.
"""

from __future__ import annotations

import contextlib
import importlib.util
import queue
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from training.jobs.spec import JobCancelled

__all__ = [
    "INSTALL",
    "PROBE_TIMEOUT_S",
    "ClusterUnreachable",
    "EngineNote",
    "RaySession",
    "RayUnavailable",
    "WorkersNeedRay",
    "check_workers",
    "engine_address",
    "engine_note",
    "probe",
    "ray_session",
    "require_ray",
    "stream_with_cancel",
]

INSTALL = "pip install -r requirements-ray.txt"
PROBE_TIMEOUT_S = 5.0
T = TypeVar("T")


class RayUnavailable(RuntimeError):
    """``ray_address`` is set but Ray is not installed here."""


class ClusterUnreachable(RuntimeError):
    """The Ray address does not answer; the message names it and what to do."""


def engine_address(workspace: Path) -> str | None:
    """The ``ray_address`` in force for ``workspace`` (None: jobs run here)."""
    from dataset.settings import get_settings

    return get_settings(workspace=workspace).ray_address


@dataclass(frozen=True)
class EngineNote:
    """Where a workspace's jobs run, in words for the pages (read-only there).

    Attributes:
        address: The ``ray_address`` in force, None when jobs run here.
        text: One sentence per job kind: which runs on Ray and which here.
        problem: Why jobs that use Ray will fail as things are ("" when none).
    """

    address: str | None
    text: str
    problem: str


def engine_note(workspace: Path) -> EngineNote:
    """What the Train and Suggestions pages show about ``ray_address`` (never imports Ray)."""
    address = engine_address(workspace)
    if address is None:
        return EngineNote(None, "Jobs run on this machine (ray_address is not set).", "")
    text = (
        f"ray_address is {address}: training and scoring jobs hand their work to Ray there "
        "(training with the run's workers). Change it on the Settings page."
    )
    problem = ""
    if importlib.util.find_spec("ray") is None:
        problem = (
            f"Ray is not installed here, so training and scoring jobs will fail; install it "
            f"with `{INSTALL}` or unset ray_address."
        )
    return EngineNote(address, text, problem)


class WorkersNeedRay(ValueError):
    """More than one training worker was asked for where jobs run on this machine."""


def check_workers(workspace: Path, workers: int) -> str | None:
    """The Ray address a training run of ``workers`` workers goes to (None: here).

    Raises:
        WorkersNeedRay: ``workers`` > 1 and ``ray_address`` is not set.
    """
    address = engine_address(workspace)
    if workers > 1 and address is None:
        raise WorkersNeedRay(
            f"{workers} workers train on Ray, and ray_address is not set; set it (Settings "
            "page, or `python -m dataset settings set ray_address local`), or train with one "
            "worker."
        )
    return address


def require_ray() -> None:
    """Refuse where Ray is not installed, with the command that installs it."""
    if importlib.util.find_spec("ray") is None:
        raise RayUnavailable(
            f"ray_address is set, but Ray is not installed here; install it with `{INSTALL}`, "
            "or unset ray_address (Settings page, or `python -m dataset settings unset "
            "ray_address`) to run jobs on this machine."
        )


def _auto_address() -> str:
    """The cluster ``auto`` means: RAY_ADDRESS, or the last ``ray start`` on this machine."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except Exception as exc:  # Ray's own lookup failed: say so in our words
        raise ClusterUnreachable(
            f"ray_address 'auto' found no running Ray cluster on this machine ({exc}); start "
            "one with `ray start --head`, or set ray_address to the head's host:port."
        ) from exc
    if not found:
        raise ClusterUnreachable(
            "ray_address 'auto' found no running Ray cluster on this machine; start one with "
            "`ray start --head`, or set ray_address to the head's host:port."
        )
    return found


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Check that ``address`` answers before ``ray.init`` waits on it.

    Returns:
        The address to give ``ray.init``: ``local`` as it is, else ``host:port``.

    Raises:
        ClusterUnreachable: nothing accepts a TCP connection at the address within
            ``timeout_s``, or ``auto`` finds no cluster.
    """
    if address == "local":
        return address
    target = _auto_address() if address == "auto" else address
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        shown = address if target == address else f"{address} ({target})"
        raise ClusterUnreachable(
            f"The Ray cluster at {shown} does not answer ({exc}); check that its head runs "
            "(`ray status` on the head) and that this machine reaches that port, or unset "
            "ray_address to run jobs here."
        ) from exc
    return target


@dataclass(frozen=True)
class RaySession:
    """An open Ray connection: where it is and what it offers."""

    address: str
    cpus: float
    gpus: float
    owned: bool  # this session started or connected Ray, and shuts it down
    node_cpus: float = 0.0  # CPUs of the largest live node: the most one worker can ask for


@contextlib.contextmanager
def ray_session(address: str, *, num_cpus: int | None = None) -> Iterator[RaySession]:
    """Connect to Ray at ``address`` (``local`` starts one here) for the body of the block.

    Args:
        address: ``local``, ``auto`` or ``host:port``, as :func:`probe` takes it.
        num_cpus: CPUs of a local Ray (None: all of this machine's).

    Raises:
        RayUnavailable, ClusterUnreachable: before anything starts.
    """
    require_ray()
    import ray

    owned = not ray.is_initialized()
    target = probe(address) if owned else address
    try:
        if owned:
            _connect(ray, target, num_cpus)
        resources = ray.cluster_resources()
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        yield RaySession(
            address,
            float(resources.get("CPU", 0)),
            float(resources.get("GPU", 0)),
            owned,
            max((float(n.get("CPU", 0)) for n in nodes), default=0.0),
        )
    finally:
        if owned:
            ray.shutdown()


def _connect(ray: Any, target: str, num_cpus: int | None) -> None:
    """``ray.init``, then the SIGTERM handler of before (a cancel must still stop the job)."""
    handler = signal.getsignal(signal.SIGTERM)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if target == "local":
        options["num_cpus"] = num_cpus
    else:
        options["address"] = target
    ray.init(**options)
    if handler is not None and threading.current_thread() is threading.main_thread():
        # ray.init installs its own; the job's turns a cancel into JobCancelled, which
        # unwinds the session and shuts Ray down.
        signal.signal(signal.SIGTERM, handler)
    _quiet_ray_data()


def _quiet_ray_data() -> None:
    """No progress bars in a job log: the job reports its own progress."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def stream_with_cancel(
    source: Iterable[T], should_stop: Callable[[], bool], *, poll_s: float = 0.5
) -> Iterator[T]:
    """Items of ``source`` (a blocking Ray iterator) as they come, checking ``should_stop``.

    ``source`` is drained on a helper thread, so the job's own thread never blocks in Ray for
    longer than ``poll_s``: a cancel marker (or SIGTERM) ends the wait within one poll.

    Raises:
        JobCancelled: ``should_stop()`` turned true.
        Exception: whatever ``source`` raised, re-raised here.
    """
    items: queue.Queue = queue.Queue(maxsize=4)
    done = object()
    stop = threading.Event()

    def drain() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=poll_s)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("end", done))
        except BaseException as exc:  # handed to the job's thread, which raises it
            items.put(("error", exc))

    thread = threading.Thread(target=drain, name="ray-stream", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, item = items.get(timeout=poll_s)
            except queue.Empty:
                if should_stop():
                    raise JobCancelled() from None
                continue
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
            if should_stop():
                raise JobCancelled()
    finally:
        stop.set()
