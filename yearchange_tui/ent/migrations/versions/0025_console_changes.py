"""Console changes: a log of what changed, written by triggers, for incremental polling

``console_changes`` receives one row per change of an establishment's row, units, engine
tasks, dry-run reports or audited actions (its id), and one row with no establishment
per change of what every row depends on (projects, school years, calendar dates,
maintenance windows, AAF imports). The rows are written by database triggers (SQLite and
PostgreSQL), so every writer goes through them; a console reads only the establishments
named since its previous read.

Revision ID: 0025
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0021'
branch_labels = None
depends_on = None

PER_ESTABLISHMENT = {
    "establishments": "id",
    "step_units": "establishment_id",
    "engine_tasks": "establishment_id",
    "dry_run_reports": "establishment_id",
    "audit_entries": "establishment_id",
}
"""Tables whose rows belong to one establishment, and the column that names it (a row
that names none, such as an audit entry of a whole run, changes no establishment)."""

GLOBAL = ("projects", "school_years", "calendar_dates", "maintenance_windows", "aaf_imports")
"""Tables every establishment's view depends on."""

_OPERATIONS = ("INSERT", "UPDATE", "DELETE")


def _trigger_name(table: str, operation: str) -> str:
    return f"tr_console_{table}_{operation.lower()}"


def _sqlite_triggers() -> None:
    for table, column in PER_ESTABLISHMENT.items():
        for operation in _OPERATIONS:
            row = "OLD" if operation == "DELETE" else "NEW"
            op.execute(
                f"CREATE TRIGGER {_trigger_name(table, operation)} AFTER {operation} ON {table} "
                f"FOR EACH ROW WHEN {row}.{column} IS NOT NULL BEGIN "
                f"INSERT INTO console_changes (establishment_id) VALUES ({row}.{column}); END")
    for table in GLOBAL:
        for operation in _OPERATIONS:
            op.execute(
                f"CREATE TRIGGER {_trigger_name(table, operation)} AFTER {operation} ON {table} "
                "FOR EACH ROW BEGIN INSERT INTO console_changes (establishment_id) "
                "VALUES (NULL); END")


def _postgresql_triggers() -> None:
    op.execute("""
        CREATE FUNCTION console_change_row() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            changed integer := ((to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END))
                                ->> TG_ARGV[0])::integer;
        BEGIN
            IF changed IS NOT NULL THEN
                INSERT INTO console_changes (establishment_id, xid)
                VALUES (changed, pg_current_xact_id()::text::bigint);
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION console_change_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO console_changes (establishment_id, xid)
            VALUES (NULL, pg_current_xact_id()::text::bigint);
            RETURN NULL;
        END $$""")
    for table, column in PER_ESTABLISHMENT.items():
        op.execute(f"CREATE TRIGGER tr_console_{table} AFTER INSERT OR UPDATE OR DELETE "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION console_change_row('{column}')")
    for table in GLOBAL:
        # Per row: a statement trigger would fire for statements that change no row (the
        # foreign keys' cascades of an establishment's deletion).
        op.execute(f"CREATE TRIGGER tr_console_{table} AFTER INSERT OR UPDATE OR DELETE "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION console_change_all()")
    for table in (*PER_ESTABLISHMENT, *GLOBAL):
        # A TRUNCATE has no rows: every view is read again.
        op.execute(f"CREATE TRIGGER tr_console_{table}_truncate AFTER TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION console_change_all()")


def upgrade() -> None:
    op.create_table(
        'console_changes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('establishment_id', sa.Integer(), nullable=True),
        sa.Column('xid', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_changes')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_console_changes_xid', 'console_changes', ['xid'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*PER_ESTABLISHMENT, *GLOBAL):
            op.execute(f"DROP TRIGGER IF EXISTS tr_console_{table} ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS tr_console_{table}_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS console_change_row()")
        op.execute("DROP FUNCTION IF EXISTS console_change_all()")
    else:
        for table in (*PER_ESTABLISHMENT, *GLOBAL):
            for operation in _OPERATIONS:
                op.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(table, operation)}")
    op.drop_index('ix_console_changes_xid', table_name='console_changes')
    op.drop_table('console_changes')
