"""Project settings the project owns (seed §3.3, §6.3, §6.4, §6.5)

- ``projects.access_block_earliest_start`` / ``access_block_latest_end``: the limits
  within which an establishment may amend its block dates (seed §6.4);
- ``projects.aaf_delta_days`` / ``aaf_complete_days``: the exchange days of the AAF
  rhythm (seed §3.3);
- ``projects.free_group_summary``: whether step 3 sends the managers' summary of deleted
  free groups (seed §6.3: no message is sent by default);
- ``establishments.access_block_message``: an establishment's own block message;
- ``establishments.school_life_defaults``: the project chose « valeurs par défaut » for
  step 5 of this establishment (seed §6.5: step 5 is the establishments' step).

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_block_earliest_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("access_block_latest_end", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("aaf_delta_days", sa.String(length=100), nullable=False,
                                      server_default="lundi,mardi,mercredi,jeudi"))
        batch_op.add_column(sa.Column("aaf_complete_days", sa.String(length=100),
                                      nullable=False, server_default="samedi"))
        batch_op.add_column(sa.Column("free_group_summary", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table("establishments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_block_message", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("school_life_defaults", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("establishments", schema=None) as batch_op:
        batch_op.drop_column("school_life_defaults")
        batch_op.drop_column("access_block_message")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("free_group_summary")
        batch_op.drop_column("aaf_complete_days")
        batch_op.drop_column("aaf_delta_days")
        batch_op.drop_column("access_block_latest_end")
        batch_op.drop_column("access_block_earliest_start")
