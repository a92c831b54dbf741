"""bank files: institution profiles (column mappings, codes, formats); firm attributes per statement

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-02 05:30:00

``institution_profile`` keeps how one institution's files are written (its column names
and codes, encoding, delimiter, number and date formats), so a monthly export needs no
editing. ``financial_statement`` gains ``industry`` and ``region``: the firm's attributes
as that statement's file gave them, so a later file with another industry for a known
firm is recorded as history instead of being dropped (earlier statements keep NULL:
their firm's stored attributes are the ones their files gave).
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'institution_profile',
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('profile', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institution.id'],
                                name=op.f('fk_institution_profile_institution_id_institution')),
        sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_institution_profile')),
    )
    if op.get_bind().dialect.name == 'postgresql':  # as creditdb/sql/rls.sql grants it when re-applied
        op.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'creditdb_operator') THEN "
                   "GRANT SELECT ON public.institution_profile TO creditdb_operator, creditdb_supervisor, "
                   "creditdb_agency, creditdb_institution; "
                   "GRANT INSERT, UPDATE ON public.institution_profile TO creditdb_operator; END IF; END $$")
    op.add_column('financial_statement', sa.Column('industry', sa.String(length=1), nullable=True))
    op.add_column('financial_statement', sa.Column('region', sa.String(length=16), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite 3.35+): batch mode would rebuild the table and lose the
    # integrity triggers of migration 0010
    for column in ('region', 'industry'):
        op.execute(f'ALTER TABLE financial_statement DROP COLUMN {column}')
    op.drop_table('institution_profile')
