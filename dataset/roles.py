"""Who may do what in a lab team: the four roles and the actions each may take.

Promises:
- One table, :data:`PERMISSIONS`, maps every action the app or the command line can take to the
  roles allowed to take it. Pages, page navigation and package functions all ask it through
  :func:`may` / :meth:`Actor.require`; nothing else decides a permission.
- ``admin`` may do everything. ``clinician`` is the only other role that sees patient data.
- An unknown role or action is a programming error and raises ``ValueError`` naming it, so a
  typo can never grant or silently deny a right.

The roles (issue 12): an **annotator** uploads, labels and skips; a **reviewer** also reviews and
releases; a **clinician** uses the diagnosis pages, the patient registry and confirms
diagnoses; an **admin** may do everything, including users, classes, training, promotion and
exports.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "COMMAND_LINE",
    "PERMISSIONS",
    "ROLES",
    "SYSTEM",
    "Actor",
    "PermissionDenied",
    "may",
]

ROLES = ("annotator", "reviewer", "clinician", "admin")

_LABELLING = frozenset({"annotator", "reviewer", "admin"})
_REVIEW = frozenset({"reviewer", "admin"})
_CLINICAL = frozenset({"clinician", "admin"})
_ADMIN = frozenset({"admin"})
_EVERYONE = frozenset(ROLES)

PERMISSIONS: dict[str, frozenset[str]] = {
    # Labelling work.
    "upload": _LABELLING,
    "label": _LABELLING,
    "skip": _LABELLING,
    "view_dataset": _LABELLING,
    "suggest": _LABELLING,
    "analyse": _EVERYONE,
    # Review and releases.
    "review": _REVIEW,
    "release": _REVIEW,
    # Patient data: the registry, lab values and diagnoses.
    "patients": _CLINICAL,
    "confirm_diagnosis": _CLINICAL,
    # Running the lab's workspace.
    "users": _ADMIN,
    "classes": _ADMIN,
    "settings": _ADMIN,
    "train": _ADMIN,
    "promote": _ADMIN,
    "export": _ADMIN,
    "audit": _ADMIN,
}
ACTIONS = tuple(PERMISSIONS)

# action -> what a refusal says the account may not do
_DOING: dict[str, str] = {
    "upload": "upload smears",
    "label": "label tiles",
    "skip": "skip tiles",
    "view_dataset": "view the dataset",
    "suggest": "use suggestions or stop their scoring",
    "analyse": "analyse smears",
    "review": "review masks",
    "release": "make releases",
    "patients": "see patient data",
    "confirm_diagnosis": "confirm diagnoses",
    "users": "manage accounts",
    "classes": "change the classes",
    "settings": "change workspace settings",
    "train": "train or stop training",
    "promote": "promote or roll back models",
    "export": "export releases",
    "audit": "read the audit trail",
}


class PermissionDenied(PermissionError):
    """An account tried an action its role does not allow; the message says which and why."""


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; the roles are {', '.join(ROLES)}.")


def may(role: str, action: str) -> bool:
    """True when ``role`` may take ``action``.

    Raises:
        ValueError: ``role`` or ``action`` is not one of :data:`ROLES` / :data:`ACTIONS`.
    """
    _check_role(role)
    if action not in PERMISSIONS:
        raise ValueError(f"Unknown action {action!r}; the actions are {', '.join(ACTIONS)}.")
    return role in PERMISSIONS[action]


@dataclass(frozen=True)
class Actor:
    """The account acting, as the server knows it (never as a browser claims it).

    Attributes:
        name: Account name, recorded with what the action changes.
        role: One of :data:`ROLES`.
    """

    name: str
    role: str

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("An actor needs an account name.")
        _check_role(self.role)

    def may(self, action: str) -> bool:
        return may(self.role, action)

    def require(self, action: str) -> None:
        """Return when the role allows ``action``; raise :class:`PermissionDenied` if not."""
        if not self.may(action):
            allowed = " or ".join(sorted(PERMISSIONS[action]))
            raise PermissionDenied(
                f"{self.name} ({self.role}) may not {_DOING[action]}: that needs the "
                f"{allowed} role. Ask an admin to change your role if you need it."
            )


# Automatic actions (retraining after N labels, a new model becoming current) run as this
# account, so the audit trail names them.
SYSTEM = Actor("system", "admin")

# A command that names no person (``python -m training promote``, ``python -m dataset
# release``) runs as this account. Whoever can run a command on the workspace's machine can
# already read and write every file in it, so roles cannot guard the shell: they guard what
# the app serves over the network. The audit row names the OS user who ran the command.
COMMAND_LINE = Actor("cli", "admin")
