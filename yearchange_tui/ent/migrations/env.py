"""Alembic environment: runs against the engine handed over by ``database.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from yearchange_tui.ent.base import Base
from yearchange_tui.models_registry import import_all_models

import_all_models()

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Leave out APScheduler's own job table (created by APScheduler, not by us) and
    procrastinate's tables (its schema SQL, applied by migration 0021)."""
    return not (type_ == "table" and (name == "apscheduler_jobs"
                                      or str(name).startswith("procrastinate_")))


def run_migrations() -> None:
    """Run migrations online, on the given engine or on ``sqlalchemy.url``."""
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        context.run_migrations()


run_migrations()
