"""The AAF group history: the groups of each student, kept after step 3 for the N-1 report

Step 3 deletes the year's AAF groups; step 4 reports the new groups that look like last
year's (seed §5), as it does for classes with ``aaf_class_history``.

Revision ID: 0011
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('aaf_group_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('establishment_id', sa.Integer(), nullable=False),
    sa.Column('school_year_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('group_code', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['establishment_id'], ['establishments.id'], name=op.f('fk_aaf_group_history_establishment_id_establishments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_aaf_group_history_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['school_year_id'], ['school_years.id'], name=op.f('fk_aaf_group_history_school_year_id_school_years'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aaf_group_history')),
    sa.UniqueConstraint('school_year_id', 'person_id', 'group_code', name=op.f('uq_aaf_group_history_school_year_id'))
    )
    with op.batch_alter_table('aaf_group_history', schema=None) as batch_op:
        batch_op.create_index('ix_aaf_group_history_establishment_year', ['establishment_id', 'school_year_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('aaf_group_history', schema=None) as batch_op:
        batch_op.drop_index('ix_aaf_group_history_establishment_year')
    op.drop_table('aaf_group_history')
