"""Engine requests may end « sans effet » (no-effect): the engine took them and queued nothing

The CHECK constraint of ``engine_requests.status`` gains the ``no-effect`` value.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD = ("queued", "running", "done", "refused", "failed")
NEW = (*OLD, "no-effect")


def _check(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("engine_requests", schema=None) as batch_op:
        # The naming convention makes "requeststatus" ck_engine_requests_requeststatus.
        batch_op.drop_constraint("requeststatus", type_="check")
        batch_op.create_check_constraint("requeststatus", _check(NEW))


def downgrade() -> None:
    op.execute("UPDATE engine_requests SET status = 'done' WHERE status = 'no-effect'")
    with op.batch_alter_table("engine_requests", schema=None) as batch_op:
        batch_op.drop_constraint("requeststatus", type_="check")
        batch_op.create_check_constraint("requeststatus", _check(OLD))
