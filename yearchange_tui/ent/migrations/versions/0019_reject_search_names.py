"""Support search: the name of a reject's person in its folded search text

``aaf_rejects.search_folded`` now also holds the last and first names of the record
(``sn``, ``givenName``), so that a person the import refused — in the rejects only —
is found by « Zoé Béranger » or « beranger zoe » (every word, any order). Existing rows
are refolded here, by batches, with the same Python fold the writers use.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yearchange_tui.ent.folding import record_name, reject_search_text

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BATCH = 2000


def _refold(with_names: bool) -> None:
    connection = op.get_bind()
    table = sa.table("aaf_rejects", sa.column("id"), sa.column("search_folded"))
    update = (sa.update(table).where(table.c.id == sa.bindparam("row_id"))
              .values(search_folded=sa.bindparam("folded")))
    last_id = 0
    while True:
        rows = connection.execute(sa.text(
            "SELECT id, code, record_id, attribute, raw_value, message, raw_xml "
            f"FROM aaf_rejects WHERE id > :last ORDER BY id LIMIT {BATCH}"),
            {"last": last_id}).fetchall()
        if not rows:
            return
        connection.execute(update, [
            {"row_id": row[0], "folded": reject_search_text(
                *row[1:6], record_name(row[6]) if with_names else None)}
            for row in rows])
        last_id = rows[-1][0]


def upgrade() -> None:
    _refold(True)


def downgrade() -> None:
    _refold(False)
