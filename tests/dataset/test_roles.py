"""The role table: who may do what (issue 12)."""

import pytest

from dataset.roles import ACTIONS, ROLES, SYSTEM, Actor, PermissionDenied, may


@pytest.mark.parametrize("action", ACTIONS)
def test_admin_may_do_everything(action):
    assert may("admin", action)


def test_only_clinicians_and_admins_see_patient_data():
    assert [r for r in ROLES if may(r, "patients")] == ["clinician", "admin"]
    assert [r for r in ROLES if may(r, "confirm_diagnosis")] == ["clinician", "admin"]


def test_reviewers_have_annotator_rights_plus_review_and_release():
    for action in ("upload", "label", "skip"):
        assert may("annotator", action) and may("reviewer", action)
    for action in ("review", "release"):
        assert may("reviewer", action) and not may("annotator", action)


def test_a_lower_role_is_refused_with_the_role_it_needs():
    with pytest.raises(
        PermissionDenied, match=r"ann \(annotator\) may not make releases.*admin or reviewer"
    ):
        Actor("ann", "annotator").require("release")
    Actor("rev", "reviewer").require("release")


def test_unknown_roles_and_actions_are_errors_not_denials():
    with pytest.raises(ValueError, match="Unknown role 'root'"):
        Actor("x", "root")
    with pytest.raises(ValueError, match="Unknown action 'delete_all'"):
        may("admin", "delete_all")


def test_system_account_is_an_admin():
    assert SYSTEM.name == "system" and SYSTEM.may("train")
