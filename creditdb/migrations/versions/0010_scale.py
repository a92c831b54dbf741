"""scale: fact tables checked set-wise per statement instead of per-row foreign keys

Revision ID: 0010
Revises: 0003
Create Date: 2026-12-01 23:50:00

``financial_statement``, ``loan`` and ``default_event`` lose their three per-row foreign
keys (firm, institution, submission); ``creditdb.integrity`` installs statement-level
checks in their place (PostgreSQL: one ``AFTER INSERT ... FOR EACH STATEMENT`` trigger
with a transition table per table; SQLite: a ``BEFORE INSERT`` trigger per row), which
are stricter: the submission must be of the row's own institution and of the table's
kind, and the firm one its institution has linked. Indexes are kept. The downgrade
drops the checks and adds the keys back (PostgreSQL validates them on the stored rows).
"""
from alembic import op

from creditdb.integrity import REPLACED_KEYS, install, uninstall

revision = '0010'
down_revision = '0003'
branch_labels = None
depends_on = None


def _by_table() -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for table, name, col, target in REPLACED_KEYS:
        out.setdefault(table, []).append((name, col, target))
    return out


def upgrade() -> None:
    for table, keys in _by_table().items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _, _ in keys:
                batch_op.drop_constraint(name, type_='foreignkey')
    install(op.get_bind())  # after SQLite's batch mode has rebuilt the tables


def downgrade() -> None:
    uninstall(op.get_bind())
    for table, keys in _by_table().items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, col, target in keys:
                batch_op.create_foreign_key(name, target, [col], ['id'])
