"""Soak: 8 annotators saving masks at once against one SmearLab server; no acknowledged save lost.

Starts ``streamlit run app.py`` on a free local port over a temporary demo workspace (the demo
photos, one per annotator, loaded with :func:`dataset.demo.load_demo`), creates one annotator
account per simulated person, and drives one Debian Chromium with one browser context per
person (Playwright's async API, never ``playwright install``). Each person signs in through the
app's form, opens the Label page, jumps to their own smear (so nobody's save conflicts with
another's) and, until the time is up, paints one stroke (alternating two classes, so every
save changes the mask) and presses Save.

- A save is **acknowledged** only when the page shows its "Saved revision N (...)" message
  with an N above the last one acknowledged on that tile; the latency is from the click on
  Save to that message (seen by a ``requestAnimationFrame`` poll in the page).
- The clock runs ``--minutes``; a save started before it ran out is waited for, so the run
  lasts a little longer (``seconds_run``).
- A save is **stored** when the store, opened after the run, holds a revision of that
  person; acknowledged and stored saves are compared per (tile, revision).
- ``--kill-at SECONDS``: that far into the saving, the server gets SIGKILL, is started again
  on the same port and workspace, and every person reloads the Label page (signing in again
  if the page asks; the session cookie usually keeps them in) and goes on. A save whose
  acknowledgement the kill cut off may or may not be stored; an acknowledged one must be.
  After the run the store must open and read cleanly.

Prints the figures and writes bench/results/soak_annotators[_TAG].json. The machine may be
shared: the figures say how this box did, not how a lab server would.

Run: .venv/bin/python bench/soak_annotators.py [--minutes 2] [--annotators 8]
     [--kill-at SECONDS] [--tag TAG]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from _browser import CHROMIUM, FLAGS, START_TIMEOUT_S, free_port, wait_for_url  # noqa: E402

from dataset import accounts, audit  # noqa: E402
from dataset.demo import load_demo  # noqa: E402
from dataset.schema import DEFAULT_CLASSES  # noqa: E402
from dataset.store import Store  # noqa: E402

PASSWORD = "soak-password-1"
VIEW = {"width": 1400, "height": 1100}
# Where a failed step's screenshot goes (--shots); None: none taken.
SHOTS: Path | None = None
WAIT_MS = int(
    os.environ.get("SOAK_WAIT_MS", 120_000)
)  # 8 browsers and the server share this machine's cores
CLASSES = ("2 erythrocyte", "3 leukocyte")  # alternated, so every stroke changes the mask
# True once a "Saved revision N (" message with N > min shows (polled every frame).
_ACK_JS = """(min) => {
  for (const el of document.querySelectorAll('[data-testid^="stAlert"]')) {
    const m = /Saved revision (\\d+) \\(/.exec(el.innerText);
    if (m && Number(m[1]) > min) return Number(m[1]);
  }
  return false;
}"""


# ---------------------------------------------------------------------------- the server
class Server:
    """``streamlit run app.py`` over a workspace on one port; killed and restarted at will."""

    def __init__(self, workspace: Path, log: Path) -> None:
        self.workspace, self.port, self.log = workspace, free_port(), log
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.spent_s = 0.0  # CPU seconds of server processes already gone (killed)

    def start(self) -> None:
        env = {**os.environ, "SMEARLAB_WORKSPACE": str(self.workspace), "PYTHONUNBUFFERED": "1"}
        env.pop("SMEARLAB_ANNOTATOR", None)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "app.py",
                "--server.headless", "true",
                "--server.port", str(self.port),
                "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_url(self.proc, time.monotonic() + START_TIMEOUT_S)
        # Keep draining its output, so a full pipe never stalls the server.
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()

    def _drain(self, proc: subprocess.Popen) -> None:
        with self.log.open("ab") as out:
            for line in proc.stdout:
                out.write(line)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server processes have used since the first start."""
        return self.spent_s + (_tree_cpu_s(self.proc.pid) if self.proc is not None else 0.0)

    def kill9(self) -> None:
        assert self.proc is not None
        self.spent_s += _tree_cpu_s(self.proc.pid)  # the last reading before it is gone
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _cpu_s(procs) -> float:
    """CPU seconds (user + system) of ``procs``, leaving out any that have gone."""
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children; 0 for one that has gone."""
    try:
        root = psutil.Process(pid)
        return _cpu_s([root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0.0


def _browser_cpu_s() -> float:
    """CPU seconds of the Chromium processes now running (the browsers' side of the load)."""
    return _cpu_s(
        p for p in psutil.process_iter(["name"]) if "chrom" in (p.info["name"] or "").lower()
    )


# ---------------------------------------------------------------------------- one annotator
@dataclass
class Person:
    name: str
    smear_id: str
    smear_label: str
    acked: list[tuple[str, int]] = field(default_factory=list)  # (tile, revision)
    latencies: list[float] = field(default_factory=list)
    clicked_unacked: int = 0  # Save clicked, no acknowledgement (cut off, or timed out)
    errors: list[str] = field(default_factory=list)
    sign_ins: int = 0  # times the sign-in form had to be filled
    reopened: int = 0


class Run:
    """What every person's loop shares: the server's state across a kill."""

    def __init__(self, server: Server, deadline: float, kill_at: float | None) -> None:
        self.server, self.deadline, self.kill_at = server, deadline, kill_at
        self.up = asyncio.Event()
        self.killed = asyncio.Event()  # set at the kill, replaced once the server is back
        self.restart_s: float | None = None


async def _open(page, run: Run, person: Person) -> str:
    """Sign in if asked, open the Label page on this person's smear; the shown tile's id."""
    from playwright.async_api import expect

    await page.goto(f"{run.server.url}/label")
    form = page.get_by_role("heading", name="Sign in to SmearLab")
    label = page.get_by_role("heading", name="Label")
    await expect(form.or_(label)).to_be_visible()
    if await form.is_visible():
        await page.get_by_role("textbox", name="Account").fill(person.name)
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        person.sign_ins += 1
    await expect(label).to_be_visible()
    await expect(page.get_by_role("button", name="Save", exact=True)).to_be_enabled()
    await _idle(page)
    await page.get_by_role("combobox", name="Jump to smear").click()
    await page.get_by_role("option", name=person.smear_label, exact=True).click()
    await expect(page.locator("code.lbl-tile-id")).to_have_text(re.compile(f"^{person.smear_id}"))
    await _idle(page)
    return (await page.locator("code.lbl-tile-id").inner_text()).strip()


async def _setup(page, run: Run, person: Person, tries: int = 3) -> str:
    """:func:`_open` before the clock starts, tried again on a failure (a loaded machine can
    keep a first page run past the timeout); the failures are kept as the person's errors."""
    for attempt in range(tries):
        try:
            return await _open(page, run, person)
        except Exception as exc:
            person.errors.append(f"setup: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            if attempt == tries - 1:
                raise
    raise AssertionError("not reached")


async def _idle(page) -> None:
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || document.querySelector('[data-testid=\"stStatusWidget\"]').offsetParent === null"
    )


async def _save_once(page, person: Person, tile: str, last: dict[str, int], turn: int) -> None:
    """Paint one stroke and save; record the acknowledgement and its latency."""
    from playwright.async_api import expect

    await (
        page.get_by_test_id("stRadio")
        .filter(has_text="Paint with")
        .get_by_text(CLASSES[turn % 2], exact=True)
        .click()
    )
    await expect(page.get_by_text(f"Painting with {CLASSES[turn % 2][2:]}")).to_be_visible()
    await _idle(page)
    canvas = page.locator("canvas.upper-canvas")
    await expect(canvas).to_have_count(1)
    box = await canvas.bounding_box()
    y = box["y"] + 80 + 40 * (turn % 8)
    await page.mouse.move(box["x"] + 60, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 260, y, steps=10)
    await page.mouse.up()
    # The new paint reached the server (and cleared the last "Saved" message with it).
    await expect(page.get_by_text("1 shape not saved yet")).to_be_visible()
    await _idle(page)
    save = page.get_by_role("button", name="Save", exact=True)
    start = time.perf_counter()
    await save.click()
    person.clicked_unacked += 1
    handle = await page.wait_for_function(
        _ACK_JS, arg=last.get(tile, 0), polling="raf", timeout=WAIT_MS
    )
    latency = time.perf_counter() - start
    revision = int(await handle.json_value())
    person.clicked_unacked -= 1
    person.acked.append((tile, revision))
    person.latencies.append(latency)
    last[tile] = revision
    await _idle(page)


async def annotate(page, run: Run, person: Person, tile: str) -> None:
    """This person's loop until the deadline, across a kill of the server."""
    last: dict[str, int] = {}
    turn = 0
    while time.monotonic() < run.deadline:
        await run.up.wait()
        killed = run.killed
        step = (
            _open(page, run, person) if tile is None else _save_once(page, person, tile, last, turn)
        )
        task = asyncio.ensure_future(step)
        cut = asyncio.ensure_future(killed.wait())
        done, _ = await asyncio.wait({task, cut}, return_when=asyncio.FIRST_COMPLETED)
        cut.cancel()
        if task not in done:  # the server was killed under this step: start the tile again
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            tile = None
            person.reopened += 1
            continue
        try:
            result = task.result()
        except Exception as exc:  # a step that failed on a live server: say so, reopen
            if not killed.is_set():
                lines = [ln for ln in str(exc).splitlines() if ln.strip()][:3]
                person.errors.append(f"{type(exc).__name__}: {' / '.join(lines)[:400]}")
                if SHOTS is not None:
                    shot = SHOTS / f"{person.name}-{len(person.errors)}.png"
                    await page.screenshot(path=str(shot), full_page=True)
            tile = None
            person.reopened += 1
            continue
        if tile is None:
            tile = result
        else:
            turn += 1


async def _killer(run: Run, start: float) -> None:
    await asyncio.sleep(max(0.0, start + run.kill_at - time.monotonic()))  # a schedule, not a wait
    run.up.clear()
    run.killed.set()
    began = time.monotonic()
    run.server.kill9()
    await asyncio.to_thread(run.server.start)
    run.restart_s = time.monotonic() - began
    run.killed = asyncio.Event()
    run.up.set()


async def soak(server: Server, people: list[Person], minutes: float, kill_at: float | None):
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            run = Run(server, float("inf"), kill_at)
            run.up.set()
            # Everyone signs in and opens their tile one after the other, before the clock
            # starts: the first page runs after a start import the whole stack.
            pages, tiles = [], []
            for person in people:
                context = await browser.new_context(viewport=VIEW)
                context.set_default_timeout(WAIT_MS)
                pages.append(await context.new_page())
                tiles.append(await _setup(pages[-1], run, person))
            start = time.monotonic()
            cpu_before = server.cpu_s(), _browser_cpu_s()
            run.deadline = start + minutes * 60
            jobs = [
                annotate(page, run, person, tile)
                for page, tile, person in zip(pages, tiles, people, strict=True)
            ]
            if kill_at is not None:
                jobs.append(_killer(run, start))
            await asyncio.gather(*jobs)
            cpu = {
                "server_cpu_s": round(server.cpu_s() - cpu_before[0], 1),
                "browsers_cpu_s": round(_browser_cpu_s() - cpu_before[1], 1),
            }
            return time.monotonic() - start, run.restart_s, cpu
        finally:
            await browser.close()


# ---------------------------------------------------------------------------- the report
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def check_store(workspace: Path, people: list[Person], before: dict) -> dict:
    """Open the store afresh and compare what it holds with what the pages acknowledged."""
    store = Store.open(workspace)
    names = {p.name for p in people}
    stored = set()
    for tile in store.latest_revisions():
        for rev in store.history(tile):
            if rev.annotator in names and (tile, rev.revision) not in before:
                stored.add((tile, rev.revision))
    acked = {a for p in people for a in p.acked}
    audited = [r for r in audit.read(store, action="save") if r.actor in names]
    # Reading every table end to end is the "opens cleanly" check.
    store.tiles(), store.smears(), store.review_counts(), store.skipped_tile_ids()
    return {
        "acknowledged": len(acked),
        "stored": len(stored),
        "acknowledged_not_stored": sorted(acked - stored),
        "stored_not_acknowledged": len(stored - acked),
        "audit_save_rows": len(audited),
        "store_opens_cleanly": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--kill-at", type=float, default=None, help="SIGKILL the server then")
    parser.add_argument("--tag", default="", help="added to the JSON's name")
    parser.add_argument("--shots", type=Path, help="save a screenshot of each failed step here")
    args = parser.parse_args()
    global SHOTS
    SHOTS = args.shots
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
    if args.kill_at is not None and not 0 < args.kill_at < args.minutes * 60:
        sys.exit(
            f"--kill-at {args.kill_at}: give a time within the run (0 to {args.minutes * 60} s)."
        )
    if not CHROMIUM.exists():
        sys.exit(f"--: needs Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)")

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        store = Store.open(workspace)
        store.init(list(DEFAULT_CLASSES))
        load_demo(store, actor="bench")
        smears = sorted(store.smears(), key=lambda s: s.label)
        if args.annotators > len(smears):
            sys.exit(f"--annotators {args.annotators}: the demo has {len(smears)} smears.")
        people = [
            Person(f"annotator{i + 1}", smears[i].smear_id, smears[i].label)
            for i in range(args.annotators)
        ]
        for p in people:
            accounts.add_account(workspace, p.name, "annotator", PASSWORD, by="bench")
        before = {(t, r.revision) for t in store.latest_revisions() for r in store.history(t)}
        server = Server(workspace, Path(tmp) / "server.log")
        server.start()
        try:
            seconds, restart_s, cpu = asyncio.run(soak(server, people, args.minutes, args.kill_at))
        finally:
            server.stop()
        try:
            figures = check_store(workspace, people, before)
        except Exception as exc:  # the store did not open cleanly: that is the finding
            figures = {"store_opens_cleanly": False, "error": f"{type(exc).__name__}: {exc}"}

    latencies = [t for p in people for t in p.latencies]
    result = {
        "annotators": args.annotators,
        "minutes": args.minutes,
        "kill_at_s": args.kill_at,
        "seconds_run": round(seconds, 1),
        "server_restart_s": None if restart_s is None else round(restart_s, 1),
        **figures,
        "save_clicked_not_acknowledged": sum(p.clicked_unacked for p in people),
        # Where the 2 cores went while saving: a lab's server does not host the browsers.
        **cpu,
        "server_cpu_s_per_acknowledged_save": (
            round(cpu["server_cpu_s"] / figures["acknowledged"], 2)
            if figures.get("acknowledged")
            else None
        ),
        "latency_s": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "max": max(latencies, default=None),
        },
        "per_annotator": [
            {
                "name": p.name,
                "acknowledged": len(p.acked),
                "sign_ins": p.sign_ins,
                "reopened": p.reopened,
                "errors": p.errors,
            }
            for p in people
        ],
        "cpus": os.cpu_count(),
        "load_average_1_5_15_at_end": os.getloadavg(),
        "note": "one Chromium, one context per annotator, server and browsers on this machine",
    }
    lost = figures.get("acknowledged_not_stored")
    equal = figures.get("acknowledged") == figures.get("stored")
    print(f"annotators {args.annotators}, {result['seconds_run']} s of saving", end="")
    print(f", server killed at {args.kill_at} s" if args.kill_at is not None else "")
    print(
        f"acknowledged saves {figures.get('acknowledged')}, stored {figures.get('stored')} "
        f"({'equal' if equal else 'NOT equal'}); acknowledged but lost: "
        f"{len(lost) if lost is not None else '?'}; stored without acknowledgement: "
        f"{figures.get('stored_not_acknowledged')}"
    )
    lat = result["latency_s"]
    if latencies:
        print(
            f"save latency (click to 'Saved'): p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, "
            f"max {lat['max']:.2f} s over {len(latencies)} saves"
        )
    print(
        f"CPU while saving: server {cpu['server_cpu_s']} s "
        f"({result['server_cpu_s_per_acknowledged_save']} s per acknowledged save), "
        f"browsers {cpu['browsers_cpu_s']} s, of {os.cpu_count()} cores x "
        f"{result['seconds_run']} s"
    )
    print(
        f"audit save rows {figures.get('audit_save_rows')}; store opens cleanly: "
        f"{figures.get('store_opens_cleanly')}; errors: {sum(len(p.errors) for p in people)}"
    )
    out = ROOT / "bench" / "results" / f"soak_annotators{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
