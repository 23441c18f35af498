"""Unit claims: a unit runs only after one process claimed it (host, pid, heartbeat)

Revision ID: 0018
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit_claims',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['step_units.id'], name=op.f('fk_unit_claims_unit_id_step_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', name=op.f('pk_unit_claims'))
    )


def downgrade() -> None:
    op.drop_table('unit_claims')
