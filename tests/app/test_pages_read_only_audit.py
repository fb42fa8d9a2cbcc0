"""Pages only read the audit trail (issue 12: "an audit write attempted from a page is refused").

Two checks, one on the sources and one at run time (:func:`dataset.audit.record_all`): no page
script names a way to write the trail, and a write made straight from a page script is refused
with a clear message and writes nothing, while a page that calls a package function still gets
that function's row.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from dataset import audit
from dataset.roles import PermissionDenied
from dataset.store import NewSmear, Store

ROOT = Path(__file__).resolve().parents[2]
UI_SCRIPTS = [*sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]
# What a page may use of dataset.audit: reading and describing rows.
READ_ONLY = {"read", "parse_when", "ACTIONS", "FIELDS", "TABLE", "AuditRow", "AuditError"}


def _audit_names(tree: ast.AST) -> set[str]:
    """Names a script takes from ``dataset.audit`` (imported, or as ``audit.NAME``)."""
    used: set[str] = set()
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "dataset.audit":
            used |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "dataset":
            aliases |= {a.asname or a.name for a in node.names if a.name == "audit"}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == "dataset.audit"}
    # audit.NAME, dataset.audit.NAME
    attributes = (n for n in ast.walk(tree) if isinstance(n, ast.Attribute))
    return used | {n.attr for n in attributes if ast.unparse(n.value) in aliases}


def test_no_page_names_a_way_to_write_the_audit_trail() -> None:
    assert len(UI_SCRIPTS) > 5
    found = {}
    for path in UI_SCRIPTS:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        writes = _audit_names(tree) - READ_ONLY
        # The Delta machinery underneath (a page could append to tables/audit through it).
        raw = {
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module in ("dataset._delta", "deltalake")
        }
        raw |= {
            a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
            if a.name in ("dataset._delta", "deltalake")
        }
        if writes or raw:
            found[path.name] = sorted(writes | raw)
    assert not found, f"pages that could write the audit trail: {found}"
    # The check reads what it should: the audit page does use the trail.
    audit_page = ast.parse((ROOT / "pages" / "audit.py").read_text(encoding="utf-8"))
    assert {"read", "ACTIONS", "FIELDS"} <= _audit_names(audit_page)


def test_the_check_catches_a_page_that_writes() -> None:
    source = "from dataset import audit\naudit.record(ws, actor='x', action='save', object_id='t')"
    assert _audit_names(ast.parse(source)) - READ_ONLY == {"record"}
    source = "from dataset.audit import record_all as r\n"
    assert _audit_names(ast.parse(source)) - READ_ONLY == {"record_all"}


def _run_as(script: Path, source: str, **names) -> None:
    """Run ``source`` as if it were the script at ``script`` (how the guard sees a caller)."""
    exec(compile(source, str(script), "exec"), {"audit": audit, **names})


@pytest.mark.parametrize("script", ["pages/review.py", "pages/_common.py", "app.py"])
def test_a_write_straight_from_a_page_is_refused_and_writes_nothing(
    workspace: Path, script: str
) -> None:
    forged = "audit.record(ws, actor='rita', action='review', object_id='t1', after='approved')"
    with pytest.raises(PermissionDenied, match="only reads the audit trail") as refused:
        _run_as(ROOT / script, forged, ws=workspace)
    assert Path(script).name in str(refused.value) and "nothing was recorded" in str(refused.value)
    batch = "audit.record_all(ws, [audit.Event('rita', 'release', '9.9.9')])"
    with pytest.raises(PermissionDenied):
        _run_as(ROOT / script, batch, ws=workspace)
    assert audit.read(workspace) == []
    # The same call from package code (here, the test) writes its row.
    audit.record(workspace, actor="rita", action="review", object_id="t1", after="approved")
    assert [(r.actor, r.object_id) for r in audit.read(workspace)] == [("rita", "t1")]


def test_a_page_calling_a_package_function_still_records_its_row(
    store: Store, make_smear, encode_image
) -> None:
    from dataset.images import encode_png_lossless, smear_id_for

    rgb = make_smear(64, 64, seed=3).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 64, 64, label="s.png"))
    tile = store.tiles(sid)[0].tile_id
    save = "store.save_mask(tile, mask, annotator='ana')"
    _run_as(
        ROOT / "pages" / "label.py",
        save,
        store=store,
        tile=tile,
        mask=np.ones((64, 64), np.uint8),
    )
    rows = audit.read(store, action="save")
    assert [(r.actor, r.object_id, r.after) for r in rows] == [("ana", tile, "1")]
