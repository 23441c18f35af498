"""Timetable declarations: each establishment's timetable software and version

The version policy (seed §2.2.3) applies to every import: the version an establishment
uses is recorded from its first manual import or set by ``timetable-version set``, and
automatic imports use it.

Revision ID: 0010
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('timetable_declarations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('establishment_id', sa.Integer(), nullable=False),
    sa.Column('product', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('declared_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['establishment_id'], ['establishments.id'], name=op.f('fk_timetable_declarations_establishment_id_establishments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timetable_declarations')),
    sa.UniqueConstraint('establishment_id', name=op.f('uq_timetable_declarations_establishment_id'))
    )


def downgrade() -> None:
    op.drop_table('timetable_declarations')
