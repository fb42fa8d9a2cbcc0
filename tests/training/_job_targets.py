"""Tiny job targets for tests/training/test_jobs.py, imported by the job process.

Referenced as ``"tests.training._job_targets:<name>"``; the job process runs from the project
root, where ``tests`` resolves as a namespace package.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from model_zoo import ModelCard, Zoo

CLASSES = ["background", "rbc", "wbc"]


def count(ctx, params):
    """Report a few epochs and return a result with wall-clock start and end."""
    started = time.time()
    for epoch in range(params.get("epochs", 3)):
        ctx.progress(epoch=epoch, loss=1.0 / (epoch + 1), val_iou=0.1 * epoch)
        ctx.log(f"epoch {epoch} done")
    time.sleep(params.get("hold_s", 0.0))  # keeps the job busy so overlaps would show
    return {"answer": 42, "started": started, "ended": time.time()}


def boom(ctx, params):
    ctx.progress(step=1)
    raise ValueError("learning rate must be positive")


def self_kill(ctx, params):
    ctx.log("about to be killed")
    os.kill(os.getpid(), signal.SIGKILL)


def nan_loss(ctx, params):
    for step in range(3):
        ctx.progress(step=step, loss=float("nan") if step == 2 else 0.5)
    return {"unreachable": True}


def loop_forever(ctx, params):
    """Spawn a grandchild, then report progress until cancelled."""
    if params.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    step = 0
    while True:
        ctx.progress(step=step, grandchild=sleeper.pid, pgid=os.getpgid(0))
        step += 1
        time.sleep(0.02)


def bad_result(ctx, params):
    return ["not", "a", "dict"]


def _stage_model(ctx) -> tuple[Path, ModelCard]:
    zoo = Zoo(ctx.workspace)
    staging = zoo.staging_dir("segmentation")
    (staging / "config.json").write_text(json.dumps({"fake": True}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(staging / "model.safetensors"))
    return staging, ModelCard(kind="segmentation", classes=CLASSES, metrics={"mean_iou": 0.5})


def train_and_register(ctx, params):
    """Write a checkpoint, hand it to the context, then end as ``params["end"]`` says."""
    staging, card = _stage_model(ctx)
    choice = {k: params[k] for k in ("make_current", "compared_with") if k in params}
    ctx.add_model("segmentation", staging, card, **choice)
    ctx.progress(staged=str(staging))
    end = params.get("end", "ok")
    if end == "fail":
        raise RuntimeError("validation crashed after the last epoch")
    if end == "wait":
        while True:
            ctx.progress(waiting=True)
            time.sleep(0.02)
    return {"staged": str(staging)}


def train_then_add_directly(ctx, params):
    """Register with the zoo itself, only at the very end (after a diverging loss here)."""
    staging, card = _stage_model(ctx)
    ctx.progress(step=0, loss=0.7)
    ctx.progress(step=1, loss=float("inf"))
    Zoo(ctx.workspace).add("segmentation", staging, card)
    return {}


def cooperative_stop(ctx, params):
    """Like a training loop with ``should_stop=lambda: ctx.cancelled``: return early, normally."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # rely on the flag alone
    staging, card = _stage_model(ctx)
    ctx.add_model("segmentation", staging, card)
    step = 0
    while not ctx.cancelled:
        ctx.progress(step=step, staged=str(staging))
        step += 1
        time.sleep(0.02)
    return {"stopped_at": step}


def detach_grandchild(ctx, params):
    """Spawn a grandchild in a session of its own (out of the job's process group), then
    report progress until cancelled."""
    if params.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
    )
    if params.get("return_now"):
        return {"grandchild": sleeper.pid, "grandchild_pgid": os.getpgid(sleeper.pid)}
    step = 0
    while True:
        ctx.progress(step=step, grandchild=sleeper.pid, grandchild_pgid=os.getpgid(sleeper.pid))
        step += 1
        time.sleep(0.02)
