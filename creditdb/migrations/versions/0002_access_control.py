"""access control: institution and audit logins; PostgreSQL roles, RLS, key functions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 14:20:00

``institution.db_role`` binds an institution to its PostgreSQL login role;
``audit_event.db_role`` records the login that appended an event (outside the hashed
content). On PostgreSQL the SQL of ``creditdb/sql`` (= ``deploy/sql``) is applied:
group roles, grants, row-level security and the SECURITY DEFINER functions.
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('institution', sa.Column('db_role', sa.String(length=63), nullable=True))
    op.create_index('ix_institution_db_role', 'institution', ['db_role'], unique=True)
    op.add_column('audit_event', sa.Column('db_role', sa.String(length=63), nullable=True))
    # row-level-security checks ask "has this institution linked this firm?" once per row;
    # without it the planner may scan all of an institution's links per row (no statistics yet)
    op.create_index('ix_borrower_link_firm_institution', 'borrower_link', ['firm_id', 'institution_id'])
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        from creditdb.security import apply_sql

        apply_sql(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        for t in ('submission', 'firm', 'borrower_link', 'financial_statement', 'loan', 'default_event',
                  'score', 'guarantee', 'audit_event'):
            op.execute(f'ALTER TABLE "{t}" DISABLE ROW LEVEL SECURITY')
    op.drop_index('ix_borrower_link_firm_institution', table_name='borrower_link')
    op.drop_column('audit_event', 'db_role')
    op.drop_index('ix_institution_db_role', table_name='institution')
    op.drop_column('institution', 'db_role')
