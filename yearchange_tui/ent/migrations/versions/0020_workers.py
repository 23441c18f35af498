"""Workers: the fleet of processes that run units (host, pid, queues, heartbeat)

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queues', sa.String(length=500), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('running', 'stopping', 'stopped', name='workerstate',
                               native_enum=False, create_constraint=True, length=32),
              nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('storage_root', sa.String(length=1000), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers'))
    )
    op.create_index('ix_workers_host_pid', 'workers', ['host', 'pid'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_workers_host_pid', table_name='workers')
    op.drop_table('workers')
