"""Step keys without a CHECK constraint: a new step needs no migration

``step_units.step`` and ``dry_run_reports.step`` hold a step's CLI name; the ``Step``
enum validates it in Python (``workflow.models.StepKey``), and a step module may declare
a new one. The CHECK constraint that listed the five names is dropped, so adding a step
is code only.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

STEP_TABLES = ("step_units", "dry_run_reports")
STEP_NAMES = ("purge-trash", "archive", "delete-obsolete", "init-directory",
              "init-school-life")


def upgrade() -> None:
    for table in STEP_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            # The naming convention makes "step" the constraint ck_<table>_step.
            batch_op.drop_constraint("step", type_="check")


def downgrade() -> None:
    names = ", ".join(f"'{name}'" for name in STEP_NAMES)
    for table in STEP_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint("step", f"step IN ({names})")
