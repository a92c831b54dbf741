"""score: references checked set-wise on write instead of per-row foreign keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 17:00:00

Writing a million ``score`` rows cost PostgreSQL 19.9 s with the three per-row foreign
key checks and 6.2 s without them (BENCHMARKS.md, "Rating at scale"). The references
are checked in one set-wise query per scoring run by
``pipelines.score_store.write_scores`` in the same transaction, which also checks that
each statement belongs to the scored firm. Indexes are kept.
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

FOREIGN_KEYS = (
    ('fk_score_firm_id_firm', ['firm_id'], 'firm'),
    ('fk_score_model_version_id_model_version', ['model_version_id'], 'model_version'),
    ('fk_score_statement_id_financial_statement', ['statement_id'], 'financial_statement'),
)


def upgrade() -> None:
    with op.batch_alter_table('score', schema=None) as batch_op:
        for name, _, _ in FOREIGN_KEYS:
            batch_op.drop_constraint(name, type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('score', schema=None) as batch_op:
        for name, cols, target in FOREIGN_KEYS:
            batch_op.create_foreign_key(name, target, cols, ['id'])
