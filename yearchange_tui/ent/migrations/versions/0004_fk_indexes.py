"""Indexes on the foreign keys whose parents the change-over deletes

Without them, deleting a class, a period or a course makes the database scan the child
tables once per deleted row (SQLite foreign-key checks, PostgreSQL cascades).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = [
    ("archive_manifests", "stored_file_id"),
    ("assessments", "class_id"),
    ("assessments", "period_id"),
    ("attendance_events", "roll_call_id"),
    ("class_councils", "class_id"),
    ("class_councils", "period_id"),
    ("courses", "alternation_id"),
    ("courses", "import_report_id"),
    ("epis", "class_id"),
    ("groups", "import_report_id"),
    ("report_cards", "class_id"),
    ("report_cards", "period_id"),
    ("report_cards", "template_id"),
    ("roll_calls", "class_id"),
    ("roll_calls", "course_id"),
    ("skill_assessments", "period_id"),
    ("teaching_services", "class_id"),
    ("teaching_services", "import_report_id"),
    ("textbook_sessions", "group_id"),
]


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
