"""Helpers every SmearLab page shares: the page frame, the cached store, who is working.

Promises:
- A page works whether it runs under ``app.py``'s navigation or on its own (AppTest, a
  direct ``streamlit run pages/x.py``): it calls :func:`setup` first and never relies on
  the sidebar having run.
- One :class:`dataset.store.Store` per workspace path per process (``st.cache_resource``),
  the path taken from :func:`dataset.settings.get_settings` on every run.
- Nobody uses a page without signing in: :func:`gate` (``app.py``, before the page runs;
  :func:`setup` when a page runs on its own) shows the sign-in form, or on a workspace without
  accounts the form that creates the admin account, and stops the run until someone has
  signed in. :func:`setup` refuses a page whose ``need`` the account's role may not take.
- Who is acting is the signed-in account, re-checked against the accounts table on every
  call (:func:`actor`, :func:`annotator`); nothing a browser sends can name someone else.
- The session is a token signed with the workspace's secret, kept in
  ``st.session_state[SESSION_KEY]`` and mirrored into the ``smearlab_session`` cookie by a
  script the page runs (:func:`dataset.accounts.cookie_script`), so a reload or a page URL
  opened in the same browser stays signed in until ``session_idle_min`` minutes pass
  without a page run.
- Other pages hand tiles to the Label page through :func:`goto_tile` and
  :func:`set_label_queue`; the Label page reads them with :func:`label_queue`.
- One loaded segmentation model per (workspace, checkpoint) per process
  (:func:`loaded_model`); which checkpoint is current is read on every call, so a promotion
  on the Train page reaches every page on its next run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from dataset import accounts
from dataset.roles import PERMISSIONS, Actor, PermissionDenied
from dataset.schema import ClassSchema
from dataset.serving import is_loopback
from dataset.settings import get_settings
from dataset.store import Store, StoreError

if TYPE_CHECKING:
    from training.service import LoadedModel

ANNOTATOR_KEY = "annotator"  # no longer read: the signed-in account is who acts
SESSION_KEY = "_smearlab_session"  # the signed session token of this browser session
_NOTICE_KEY = "_smearlab_auth_notice"  # why the sign-in form is shown (signed out, idle)
_FORGET_COOKIE_KEY = "_smearlab_forget_cookie"
# A page run renews the session (and its cookie) once its token is this old.
RENEW_AFTER = dt.timedelta(minutes=1)
LABEL_TILE_KEY = "label_tile_id"
LABEL_QUEUE_KEY = "label_queue"
LABEL_PAGE = "pages/label.py"


def setup(title: str, *, need: str) -> Store:
    """Frame a page (wide layout, tab title), check who may see it, and return the store.

    Args:
        title: The page's title.
        need: The action of :data:`dataset.roles.PERMISSIONS` the page is for; an account
            whose role may not take it sees a refusal instead of the page.
    """
    st.set_page_config(page_title=f"{title} · SmearLab", layout="wide")
    if _leave_legacy_pages_mode() or not _routed_by_app():
        # Run on its own (AppTest, `streamlit run pages/x.py`): nothing has checked who
        # this is yet, and nothing has drawn the sidebar.
        gate()
        sidebar()
    require_page(need, title)
    try:
        return get_store()
    except (StoreError, OSError) as exc:
        st.error(
            f"The workspace {workspace()} cannot be opened: {exc} "
            "Set SMEARLAB_WORKSPACE to a folder you can write to and restart SmearLab."
        )
        st.stop()


def _routed_by_app() -> bool:
    """True when ``app.py`` runs this page (and has checked the session before it)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx is not None and Path(ctx.main_script_path).name == "app.py"


def _leave_legacy_pages_mode() -> bool:
    """Hand a page that Streamlit ran in its legacy ``pages/`` mode over to ``app.py``.

    Streamlit 1.67 runs the scripts of a ``pages/`` folder beside the entry script directly
    (its first multipage mode, without ``app.py``: no sidebar, every file listed) until the
    process's first ``st.navigation`` call, so a first visit to e.g. ``/label`` after a restart
    lands there. Clearing the flag and re-running lets ``app.py`` route the same page (the page
    hash is the url path in both modes). AppTest restores the legacy mode before every run and
    a re-run would drop the clicked button, so there the page runs on its own: returns True,
    and :func:`setup` checks the session and draws the sidebar itself.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory:
        return False
    PagesManager.uses_pages_directory = False
    if config.get_option("global.appTest"):
        return True
    st.rerun()
    return False  # not reached: st.rerun ends the run


def sidebar() -> None:
    """The shared sidebar: who is signed in (saved with every action), sign-out, workspace."""
    who = actor()
    with st.sidebar:
        st.markdown(f"Signed in as **{who.name}** ({who.role})")
        st.button("Sign out", key="auth_sign_out", on_click=_sign_out, icon=":material/logout:")
        st.caption(f"Workspace: `{workspace()}`")


# ---------------------------------------------------------------------------- sign-in
def _address() -> str:
    """The client's address, for the per-address sign-in limit ("" when unknown)."""
    try:
        address = st.context.ip_address
    except Exception:  # no client (a bare script run)
        return ""
    return address if isinstance(address, str) else ""  # AppTest: a stand-in object


def _idle() -> dt.timedelta:
    return dt.timedelta(minutes=get_settings().session_idle_min)


def current_session() -> accounts.Session | None:
    """The checked session of this browser, or None when nobody is signed in."""
    return _session()


def _session() -> accounts.Session | None:
    """This browser session's checked session: the token of this Streamlit session, else the
    cookie the browser sent when it connected; None (with the reason kept for the form)."""
    ws = workspace()
    token = st.session_state.get(SESSION_KEY)
    if token is None:
        token = _cookies().get(accounts.SESSION_COOKIE)
        if not token:
            return None
    try:
        return accounts.check_session(ws, str(token))
    except accounts.SessionInvalid as exc:
        st.session_state.pop(SESSION_KEY, None)
        st.session_state[_NOTICE_KEY] = str(exc)
        st.session_state[_FORGET_COOKIE_KEY] = True
        return None


def _start_session(name: str) -> None:
    st.session_state[SESSION_KEY] = accounts.issue_session(workspace(), name, idle=_idle())
    st.session_state.pop(_NOTICE_KEY, None)
    st.session_state.pop(_FORGET_COOKIE_KEY, None)


def gate() -> Actor:
    """The signed-in account; else draw the sign-in form (or, on a workspace without
    accounts, the form creating the admin account) and stop the run.

    A page run is activity: once the token is :data:`RENEW_AFTER` old it is renewed for
    another idle period, and the cookie with it.
    """
    session = _session()
    if session is None:
        _sign_in_page()
        st.stop()
    if accounts.clock() - session.issued_at >= RENEW_AFTER or SESSION_KEY not in st.session_state:
        _start_session(session.actor.name)
    # Every run writes the cookie the session has now (an unchanged one is rewritten as is).
    _write_cookie(st.sidebar)
    return session.actor


def _write_cookie(where) -> None:
    """Mirror this session's token into the browser's cookie (see cookie_script)."""
    where.html(
        accounts.cookie_script(st.session_state[SESSION_KEY], int(_idle().total_seconds())),
        unsafe_allow_javascript=True,
        width="content",
    )


def actor() -> Actor:
    """The signed-in account acting now, its role re-read from the accounts table; a run
    without a valid session (signed out, idle, disabled) shows the sign-in form and stops."""
    token = st.session_state.get(SESSION_KEY)
    if token is not None:
        try:
            return accounts.check_session(workspace(), str(token)).actor
        except accounts.SessionInvalid:
            pass
    return gate()


def permit(action: str) -> bool:
    """Whether the signed-in account may take ``action``; shows why not when it may not.

    Role-gated buttons ask this before they call the package.
    """
    try:
        actor().require(action)
    except PermissionDenied as exc:
        st.error(str(exc), icon=":material/block:")
        return False
    return True


def refusal(action: str) -> str | None:
    """Why the signed-in account may not take ``action`` now, or None when it may.

    For button callbacks, which must not stop the run: they show the message instead.
    """
    token = st.session_state.get(SESSION_KEY)
    try:
        who = accounts.check_session(workspace(), str(token or "")).actor
        who.require(action)
    except (accounts.SessionInvalid, PermissionDenied) as exc:
        return str(exc)
    return None


def require_page(need: str, title: str) -> Actor:
    """Refuse the page (a message, then stop) unless the signed-in role may take ``need``."""
    who = actor()
    if not who.may(need):
        allowed = " or ".join(sorted(PERMISSIONS[need]))
        st.title(title)
        st.error(
            f"The {title} page is for the {allowed} role; you are signed in as {who.name} "
            f"({who.role}). Ask an admin if you need it.",
            icon=":material/block:",
        )
        st.stop()
    return who


def _sign_out() -> None:
    """The sidebar's Sign out: ends the account's sessions and forgets the cookie."""
    token = st.session_state.pop(SESSION_KEY, None)
    if token is not None:
        try:
            name = accounts.check_session(workspace(), str(token)).actor.name
        except accounts.SessionInvalid:
            name = ""
        if name:
            accounts.sign_out(workspace(), name, address=_address())
    st.session_state[_NOTICE_KEY] = "You are signed out."
    st.session_state[_FORGET_COOKIE_KEY] = True


def _sign_in_page() -> None:
    """The sign-in form, or the first-run form creating the admin account."""
    ws = workspace()
    if st.session_state.get(_FORGET_COOKIE_KEY) or accounts.SESSION_COOKIE in _cookies():
        st.html(accounts.cookie_script(None, 0), unsafe_allow_javascript=True, width="content")
    if not accounts.has_accounts(ws):
        _first_admin_form(ws)
        return
    st.title("Sign in to SmearLab")
    notice = st.session_state.get(_NOTICE_KEY)
    if notice:
        st.info(notice)
    with st.form("auth_sign_in"):
        name = st.text_input("Account", key="auth_name", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="auth_password", autocomplete="current-password"
        )
        go = st.form_submit_button("Sign in", type="primary")
    if go:
        try:
            who = accounts.verify_sign_in(ws, name, password, _address())
        except accounts.SignInRefused as exc:
            st.error(str(exc))
            return
        _signed_in(who.name)


def _signed_in(name: str) -> None:
    """Start ``name``'s session after a sign-in form succeeded, and draw the app for it."""
    _start_session(name)
    # The browser gets the cookie now, not only after the re-run: a reload or another page
    # opened at once stays signed in.
    _write_cookie(st)
    st.rerun()


def _first_admin_form(ws: Path) -> None:
    st.title("Create the admin account")
    if not is_loopback(st.get_option("server.address")):
        st.error(
            "This workspace has no account yet, and this server is reachable from the "
            "network, so it will not create one from a browser. Start SmearLab with "
            "`make run` (this machine only) and create the admin account there, or run "
            "`python -m dataset users add NAME --role admin`."
        )
        return
    st.write(
        "This workspace has no accounts yet. The first account is the lab's admin: it can "
        "add the others (Users page, or `python -m dataset users add`)."
    )
    with st.form("auth_first_admin"):
        name = st.text_input("Account", key="auth_new_name", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="auth_new_password", autocomplete="new-password"
        )
        again = st.text_input(
            "Repeat the password",
            type="password",
            key="auth_new_again",
            autocomplete="new-password",
        )
        go = st.form_submit_button("Create the admin account", type="primary")
    if go:
        if password != again:
            st.error("The two passwords differ; type the same password twice.")
            return
        try:
            accounts.add_first_admin(ws, name, password)
            who = accounts.verify_sign_in(ws, name, password, _address())
        except accounts.AccountError as exc:
            st.error(str(exc))
            return
        _signed_in(who.name)


def _cookies() -> dict[str, str]:
    """The cookies the browser sent when it connected (none without a browser)."""
    try:
        cookies = st.context.cookies.to_dict()
    except Exception:  # no client (a bare script run)
        return {}
    if not isinstance(cookies, dict):  # AppTest has no browser: a stand-in object
        return {}
    return {k: v for k, v in cookies.items() if isinstance(k, str) and isinstance(v, str)}


def workspace() -> Path:
    """The workspace folder of this process, absolute."""
    return Path(get_settings().workspace).expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    return Store.open(Path(path))


def get_store() -> Store:
    """The store of the configured workspace, opened once per process."""
    return _open_store(str(workspace()))


@st.cache_resource(show_spinner="Loading the segmentation model…", max_entries=4)
def _load_model(path: str, model_id: str) -> LoadedModel:
    from training.service import load_model

    loaded = load_model(Path(path), model_id)
    assert loaded is not None  # an explicit id either loads or raises
    return loaded


def loaded_model(model_id: str | None = None) -> LoadedModel | None:
    """A segmentation model of this workspace, loaded once per process.

    Args:
        model_id: The checkpoint; None for the current segmentation model, looked up on
            every call so that a promotion is picked up at once.

    Returns:
        None when ``model_id`` is None and no model has been trained yet.

    Raises:
        model_zoo.ZooError, OSError, ValueError: the checkpoint cannot be read or loaded.
    """
    from model_zoo import Zoo

    path = workspace()
    if model_id is None:
        card = Zoo(path).current("segmentation")
        if card is None:
            return None
        model_id = card.model_id
    return _load_model(str(path), model_id)


def current_card():
    """The current segmentation model's card, or None (no model yet, or an unreadable pointer,
    which is shown as an error so the page can carry on without a model)."""
    from model_zoo import Zoo, ZooError

    try:
        return Zoo(workspace()).current("segmentation")
    except ZooError as exc:
        st.error(f"The current model cannot be read: {exc}")
        return None


def annotator() -> str:
    """The signed-in account's name: recorded as who saved, skipped, entered or confirmed."""
    return actor().name


def schema_or_none(store: Store) -> ClassSchema | None:
    """The class schema, or None for a workspace nobody has set up yet."""
    try:
        return store.schema()
    except StoreError:
        return None


def swatch(color: str, text: str) -> str:
    """HTML for a colour chip followed by ``text`` (for legends next to widgets)."""
    return (
        f'<span style="display:inline-block;width:0.9em;height:0.9em;border-radius:2px;'
        f'background:{color};border:1px solid #0003;vertical-align:middle;margin-right:0.35em">'
        f"</span>{text}"
    )


def legend(schema: ClassSchema) -> None:
    """One line of colour chips naming every class."""
    chips = "&emsp;".join(swatch(c, n) for n, c in zip(schema.names, schema.colors, strict=True))
    st.markdown(chips, unsafe_allow_html=True)


def engine_caption(workspace: Path) -> None:
    """Where this workspace's jobs run (``ray_address``), read-only, with any problem."""
    from training.cluster import engine_note

    note = engine_note(workspace)
    st.caption(note.text, help="The ray_address setting (SMEARLAB_RAY_ADDRESS).")
    if note.problem:
        st.warning(note.problem)


def goto_tile(tile_id: str) -> None:
    """Open the Label page on ``tile_id`` (call from a button handler)."""
    st.session_state[LABEL_TILE_KEY] = tile_id
    st.switch_page(LABEL_PAGE)


def set_label_queue(name: str, tile_ids: Sequence[str]) -> None:
    """Offer ``tile_ids`` (in this order) as a tile order on the Label page, titled ``name``.

    The active-learning suggestions use this to hand their ranking to the labeller.
    """
    st.session_state[LABEL_QUEUE_KEY] = (name, list(tile_ids))


def label_queue() -> tuple[str, list[str]] | None:
    """The queue last set by :func:`set_label_queue`, if any."""
    queue = st.session_state.get(LABEL_QUEUE_KEY)
    return None if queue is None else (str(queue[0]), list(queue[1]))
