"""Not on the network by accident (issues #9, #12): `make run` is local, `make serve` warns
and needs an account first."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from dataset.serving import exposure_warning, is_loopback

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("address", "local"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("127.0.0.2", True), (None, False), ("", False), ("0.0.0.0", False), ("::", False),
     ("192.168.1.20", False), ("lab-pc.example", False)],
)  # fmt: skip
def test_only_loopback_addresses_are_local(address, local):
    assert is_loopback(address) is local
    assert (exposure_warning(address) is None) is local
    if not local:
        assert "plain HTTP" in exposure_warning(address)


def _make(target: str) -> str:
    done = subprocess.run(
        ["make", "-n", target, "VENV=.venv"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout


@pytest.mark.skipif(subprocess.run(["which", "make"]).returncode != 0, reason="no make")
def test_make_run_serves_this_machine_only_and_make_serve_the_network():
    run = [line for line in _make("run").splitlines() if "streamlit run" in line]
    serve = [line for line in _make("serve").splitlines() if "streamlit run" in line]
    assert run and all("--server.address 127.0.0.1" in line for line in run)
    assert serve and all("--server.address 0.0.0.0" in line for line in serve)
    lines = _make("serve").splitlines()
    check = [i for i, line in enumerate(lines) if "-m dataset serve-check" in line]
    assert check and check[0] < lines.index(serve[0]), "serve-check runs before streamlit"


@pytest.mark.parametrize(("address", "banner"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_the_app_shows_the_banner_only_when_exposed(tmp_path, monkeypatch, address, banner):
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(tmp_path / "ws"))
    real = streamlit.get_option
    monkeypatch.setattr(
        streamlit, "get_option", lambda key: address if key == "server.address" else real(key)
    )
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    shown = any("plain HTTP" in w.value for w in at.warning)
    assert shown is banner


@pytest.mark.parametrize(("address", "offered"), [("0.0.0.0", False), ("127.0.0.1", True)])
def test_the_first_admin_is_created_from_this_machine_only(tmp_path, monkeypatch, address, offered):
    from dataset.accounts import has_accounts

    ws = tmp_path / "ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    real = streamlit.get_option
    monkeypatch.setattr(
        streamlit, "get_option", lambda key: address if key == "server.address" else real(key)
    )
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert [t.value for t in at.title] == ["Create the admin account"]
    assert bool(at.text_input) is offered
    if not offered:
        assert "reachable from the network" in at.error[0].value
        return
    at.switch_page("pages/analysis.py").run()  # AppTest's later runs are page runs
    at.text_input(key="auth_new_name").input("lead")
    at.text_input(key="auth_new_password").input("lab-password-1")
    at.text_input(key="auth_new_again").input("lab-password-1")
    next(b for b in at.button if b.label == "Create the admin account").click()
    at.run()
    assert not at.exception, at.exception
    assert has_accounts(ws) and [t.value for t in at.title] == ["Analysis"]
    assert "Signed in as **lead** (admin)" in [m.value for m in at.sidebar.markdown]
