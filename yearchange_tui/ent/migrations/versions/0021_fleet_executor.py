"""Fleet executor: procrastinate's schema (PostgreSQL), cancel and hand-over columns on
engine tasks, the storage identity the workers compare with their storage root's marker

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('engine_tasks') as batch:
        batch.add_column(sa.Column('cancel_requested_at', sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column('deferred_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('job_id', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('worker', sa.String(length=300), nullable=False,
                                   server_default=''))
    op.create_table('storage_identity',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('storage_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_storage_identity'))
    )
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        # procrastinate is a PostgreSQL-only dependency (the postgres extra).
        from procrastinate.schema import SchemaManager

        # Raw driver call: the schema's SQL must not go through bind-parameter parsing.
        bind.connection.dbapi_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        bind.connection.dbapi_connection.execute("""
            DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
                procrastinate_jobs, procrastinate_workers CASCADE;
            DO $$ DECLARE f record; BEGIN
              FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                       JOIN pg_namespace n ON n.oid = p.pronamespace
                       WHERE p.proname LIKE 'procrastinate\\_%' AND n.nspname = current_schema()
              LOOP EXECUTE 'DROP FUNCTION ' || f.sig || ' CASCADE'; END LOOP;
            END $$;
            DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
                procrastinate_job_status CASCADE;
        """)
    op.drop_table('storage_identity')
    with op.batch_alter_table('engine_tasks') as batch:
        batch.drop_column('worker')
        batch.drop_column('attempts')
        batch.drop_column('job_id')
        batch.drop_column('deferred_at')
        batch.drop_column('cancel_requested_at')
