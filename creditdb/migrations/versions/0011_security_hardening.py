"""security hardening: institution code format, the login that trained a model, four eyes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:30:00

* ``institution.code`` must match ``[A-Z0-9_-]{1,32}`` (CHECK constraint; SQLite: triggers): the code is part
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


#: SQLite cannot add a CHECK constraint without rebuilding the table (which its foreign keys
#: forbid once rows refer to it): the same rule as triggers there
_SQLITE_TRIGGERS = {
    f"institution_code_format_{op_}": (
        f"CREATE TRIGGER IF NOT EXISTS institution_code_format_{op_} BEFORE {op_.upper()} "
        f"{'OF code ' if op_ == 'update' else ''}ON institution "
        f"WHEN NOT ({CODE_CHECK['sqlite'].replace('code', 'NEW.code')}) BEGIN "
        "SELECT RAISE(ABORT, 'ck_institution_code_format: institution codes are [A-Z0-9_-]{1,32}'); END")
    for op_ in ("insert", "update")
}


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    check = CODE_CHECK[dialect]
    bad = [r[0] for r in bind.execute(sa.text(f"SELECT code FROM institution WHERE NOT ({check})"))]
    if bad:
        raise RuntimeError(f"institution codes {bad!r} break the rule [A-Z0-9_-]{{1,32}}: rename them first")
    # (ALTER TABLE ... ADD COLUMN in place on both: no table rebuild)
    op.add_column('model_version', sa.Column('trained_by_login', sa.String(length=63), nullable=True))
    if dialect == 'postgresql':
        op.create_check_constraint(op.f('ck_institution_code_format'), 'institution', check)
        from creditdb.security import apply_sql

        apply_sql(bind)
    else:
        for sql in _SQLITE_TRIGGERS.values():
            op.execute(sql)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS model_version_four_eyes ON model_version")
        op.execute("DROP FUNCTION IF EXISTS public.creditdb_model_four_eyes()")
        op.drop_constraint(op.f('ck_institution_code_format'), 'institution', type_='check')
        op.drop_column('model_version', 'trained_by_login')
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("ALTER TABLE model_version DROP COLUMN trained_by_login")
