"""The audit trail: every run, dry run, refusal and override, with who and from where.

Who is the account of the process's real uid (``pwd``), never an environment variable a
user can set (``USER``, ``LOGNAME``). Where from is the SSH client of ``SSH_CONNECTION``:
the environment is all there is, so it is recorded as declared (« (déclaré) »). Work the
engine does on someone's request is recorded for the requester (:func:`on_behalf_of`),
with the engine that executed it in the entry's details.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.workflow.models import AuditEntry

DECLARED = "(déclaré)"
_acting = threading.local()
# The label of :func:`identity_label`: ``user@host pid N[ depuis CLIENT]``.
_LABEL = re.compile(r"^(?P<user>[^@]*)@(?P<host>\S*) pid (?P<pid>\d+)(?: depuis (?P<ssh>.*))?$")


def system_user() -> str:
    """The account of this process's real uid (its uid when it has no passwd entry)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def declared_ssh_client() -> str:
    """The SSH client address (``SSH_CONNECTION``, else ``SSH_CLIENT``), marked declared."""
    connection = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split()
    return f"{connection[0]} {DECLARED}" if connection else ""


def process_identity() -> dict[str, Any]:
    """OS user (real uid), declared SSH client address, host and pid of this process."""
    return {"os_user": system_user(), "ssh_client": declared_ssh_client(),
            "host": socket.gethostname(), "pid": os.getpid()}


def operator_identity() -> dict[str, Any]:
    """Who the work is for: the requester this thread works for, else this process."""
    requester = current_requester()
    return requester_identity(requester) if requester else process_identity()


def identity_label(identity: dict[str, Any] | None = None) -> str:
    """``user@host pid N[ depuis CLIENT (déclaré)]``: who asks, in request rows."""
    identity = identity or process_identity()
    ssh = f" depuis {identity['ssh_client']}" if identity["ssh_client"] else ""
    return f"{identity['os_user']}@{identity['host']} pid {identity['pid']}{ssh}"


def requester_identity(label: str) -> dict[str, Any]:
    """The identity a :func:`identity_label` names (the label itself as user otherwise)."""
    match = _LABEL.match(label.strip())
    if match is None:
        return {"os_user": label.strip()[:100], "ssh_client": "", "host": "", "pid": 0}
    return {"os_user": match["user"], "ssh_client": (match["ssh"] or "")[:100],
            "host": match["host"], "pid": int(match["pid"])}


@contextmanager
def on_behalf_of(requester: str | None) -> Iterator[None]:
    """Record the audit entries of this thread for ``requester`` (a request's sender).

    The entries keep who executed the work (the engine) in their details, under
    ``executed_by``; ``None`` or an empty requester changes nothing.
    """
    previous = getattr(_acting, "requester", None)
    _acting.requester = requester or previous
    try:
        yield
    finally:
        _acting.requester = previous


def current_requester() -> str | None:
    """The requester this thread works for, if any."""
    return getattr(_acting, "requester", None)


def audit(session: Session, action: str, outcome: str, *, establishment_id: int | None = None,
          step: str = "", override: bool = False, details: dict[str, Any] | None = None) -> None:
    """Record one audit entry in the session's transaction.

    Args:
        session: the session; the entry commits with it.
        action: what was asked (``run``, ``dry-run``, ``import-aaf``, ``override``…).
        outcome: ``done``, ``failed``, ``refused``, ``granted``…
        establishment_id: the establishment concerned, if one.
        step: the step concerned, if one.
        override: True when a guard override let the action through.
        details: counts and reasons (JSON).
    """
    identity = process_identity()
    requester = current_requester()
    if requester:
        details = {**(details or {}), "requested_by": requester,
                   "executed_by": identity_label(identity)}
        identity = requester_identity(requester)
    session.execute(insert(AuditEntry).values(
        at=utcnow(), action=action, outcome=outcome,
        establishment_id=establishment_id, step=step, override=override,
        details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True),
        **identity))
