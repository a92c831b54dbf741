"""security hardening: institution code format, the login that trained a model, four eyes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:30:00

* ``institution.code`` must match ``[A-Z0-9_-]{1,32}`` (CHECK constraint): the code is part
  of every institution-scoped hash, so it may not hold the scope separator ``|``.
  Existing codes that break the rule stop the upgrade with their names.
* ``model_version.trained_by_login``: the PostgreSQL login that registered the model, set
  by the server whatever the insert says; only a supervisor login that did not train a
  model may approve it (trigger ``model_version_four_eyes``, ``creditdb/sql/rls.sql``).
* On PostgreSQL the access-control SQL is applied again: pinned ``search_path`` and fully
  qualified names in every function, the audit lock table, the narrower grants.
"""
import sqlalchemy as sa
from alembic import op

from creditdb.codes import CODE_CHECK

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    check = CODE_CHECK[bind.dialect.name]
    bad = [r[0] for r in bind.execute(sa.text(f"SELECT code FROM institution WHERE NOT ({check})"))]
    if bad:
        raise RuntimeError(f"institution codes {bad!r} break the rule [A-Z0-9_-]{{1,32}}: rename them first")
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_institution_code_format'), check)
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trained_by_login', sa.String(length=63), nullable=True))
    if bind.dialect.name == 'postgresql':
        from creditdb.security import apply_sql

        apply_sql(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS model_version_four_eyes ON model_version")
        op.execute("DROP FUNCTION IF EXISTS public.creditdb_model_four_eyes()")
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.drop_column('trained_by_login')
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_institution_code_format'), type_='check')
