"""bank files: institution profiles (column mappings, codes, formats)

Revision ID: 0013
Revises: 0012_member_isolation
Create Date: 2026-12-02 05:30:00

``institution_profile`` keeps how one institution's files are written (its column names
and codes, encoding, delimiter, number and date formats), so a monthly export needs no
editing. (The firm's attributes per statement, which record a later file's other industry
for a known firm as history, come from migration 0012_member_isolation.)
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012_member_isolation'
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


def downgrade() -> None:
    op.drop_table('institution_profile')
