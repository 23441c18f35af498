"""Engine stop requests: ``yearchange engine-stop`` asks the engine holding the lease to stop

Two columns on ``engine_lease``: who asked the engine to stop and when. The engine reads
them with each heartbeat and stops cleanly (running units stop at their next checkpoint);
taking the lease clears them.

Revision ID: 0013
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("engine_lease", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stop_requested_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("stop_requested_by", sa.String(length=300),
                                      nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("engine_lease", schema=None) as batch_op:
        batch_op.drop_column("stop_requested_by")
        batch_op.drop_column("stop_requested_at")
