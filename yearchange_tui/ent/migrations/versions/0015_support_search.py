"""Support search: folded search columns on ``people`` and ``aaf_rejects``

``search_folded`` holds the case- and accent-free text the support search compares
(``yearchange_tui/ent/folding.py``): names and INE of a person; code, record id,
attribute, value and message of a reject. Existing rows are backfilled here, by
batches, with the same Python fold the writers use. An index on ``aaf_rejects.record_id``
finds a person's rejects.

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yearchange_tui.ent.folding import PERSON_FOLD_MAX, person_search_text, reject_search_text

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None

BATCH = 2000


def _backfill(table: str, columns: str, fold: object) -> None:
    connection = op.get_bind()
    table_ref = sa.table(table, sa.column("id"), sa.column("search_folded"))
    update = (sa.update(table_ref).where(table_ref.c.id == sa.bindparam("row_id"))
              .values(search_folded=sa.bindparam("folded")))
    last_id = 0
    while True:
        rows = connection.execute(sa.text(
            f"SELECT id, {columns} FROM {table} WHERE id > :last ORDER BY id LIMIT {BATCH}"),
            {"last": last_id}).fetchall()
        if not rows:
            return
        connection.execute(update, [{"row_id": row[0], "folded": fold(*row[1:])}  # type: ignore[operator]
                                    for row in rows])
        last_id = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_folded", sa.String(length=PERSON_FOLD_MAX),
                                      nullable=False, server_default=""))
        batch_op.create_index("ix_people_search_folded", ["search_folded"])
    with op.batch_alter_table("aaf_rejects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_folded", sa.Text(), nullable=False,
                                      server_default=""))
        batch_op.create_index("ix_aaf_rejects_record_id", ["record_id"])
    _backfill("people", "last_name, first_name, ine", person_search_text)
    _backfill("aaf_rejects", "code, record_id, attribute, raw_value, message", reject_search_text)


def downgrade() -> None:
    with op.batch_alter_table("aaf_rejects", schema=None) as batch_op:
        batch_op.drop_index("ix_aaf_rejects_record_id")
        batch_op.drop_column("search_folded")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_search_folded")
        batch_op.drop_column("search_folded")
