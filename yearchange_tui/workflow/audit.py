"""The audit trail: every run, dry run, refusal and override, with who and from where."""

from __future__ import annotations

import getpass
import json
import os
import socket
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.workflow.models import AuditEntry


def operator_identity() -> dict[str, Any]:
    """OS user, SSH client address, host and pid of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION") or ""
    return {"os_user": user, "ssh_client": ssh.split(" ")[0] if ssh else "",
            "host": socket.gethostname(), "pid": os.getpid()}


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
    session.execute(insert(AuditEntry).values(
        at=utcnow(), action=action, outcome=outcome,
        establishment_id=establishment_id, step=step, override=override,
        details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True),
        **operator_identity()))
