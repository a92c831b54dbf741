"""member isolation: firm attributes per statement, scores per institution, published statistics

Revision ID: 0012_member_isolation
Revises: 0011
Create Date: 2026-12-02 05:20:00

* ``financial_statement`` gains the firm's attributes as the submitting institution gave
  them (``industry``, ``region``, ``established_year``, ``size_class``); stored rows get
  the shared firm's values (what the first submitter gave).
* ``score.institution_id``: the institution whose statements a score came from.
* ``stat_publication`` and ``stat_cell``: pool-wide statistics published by the operator
  for members to read (``creditdb stats publish`` / ``stats published``). On PostgreSQL
  ``creditdb/sql/member_isolation.sql`` grants members read access (and the operator insert).
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_member_isolation'
down_revision = '0011'
branch_labels = None
depends_on = None

ATTRIBUTES = (('industry', sa.String(length=1)), ('region', sa.String(length=16)),
              ('established_year', sa.Integer()), ('size_class', sa.String(length=8)))


def upgrade() -> None:
    for name, type_ in ATTRIBUTES:
        op.add_column('financial_statement', sa.Column(name, type_, nullable=True))
    op.execute("UPDATE financial_statement SET industry = (SELECT f.industry FROM firm f WHERE f.id = firm_id), "
               "region = (SELECT f.region FROM firm f WHERE f.id = firm_id), "
               "established_year = (SELECT f.established_year FROM firm f WHERE f.id = firm_id), "
               "size_class = (SELECT f.size_class FROM firm f WHERE f.id = firm_id)")
    op.add_column('score', sa.Column('institution_id', sa.Integer(), nullable=True))
    op.create_index('ix_score_institution_id', 'score', ['institution_id'])
    op.create_table(
        'stat_publication',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_by', sa.String(length=100), nullable=False),
        sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
        sa.Column('dimensions', sa.JSON(), nullable=False),
        sa.Column('ratios', sa.JSON(), nullable=False),
        sa.Column('margins', sa.Boolean(), nullable=False),
        sa.Column('policy', sa.JSON(), nullable=False),
        sa.Column('policy_sha256', sa.String(length=64), nullable=False),
        sa.Column('cells', sa.Integer(), nullable=False),
        sa.Column('suppressed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stat_publication')),
    )
    op.create_table(
        'stat_cell',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('publication_id', sa.Integer(), nullable=False),
        *(sa.Column(c, sa.String(length=16), nullable=True) for c in ('industry', 'region', 'size', 'year')),
        sa.Column('population', sa.String(length=16), nullable=False),
        sa.Column('ratio', sa.String(length=64), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=True) for c in ('firms', 'statements', 'labelled', 'defaults')),
        sa.Column('default_rate', sa.Double(), nullable=True),
        sa.Column('count', sa.Integer(), nullable=True),
        *(sa.Column(c, sa.Double(), nullable=True) for c in ('mean', 'median', 'std', 'p30', 'p70')),
        sa.Column('suppressed', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['publication_id'], ['stat_publication.id'],
                                name=op.f('fk_stat_cell_publication_id_stat_publication')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stat_cell')),
    )
    op.create_index('ix_stat_cell_publication_id', 'stat_cell', ['publication_id'])
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        from creditdb.security import apply_sql

        apply_sql(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':  # the score policy of 0012 reads score.institution_id
        op.execute('DROP POLICY IF EXISTS institution_read ON public.score')
    op.drop_index('ix_stat_cell_publication_id', table_name='stat_cell')
    op.drop_table('stat_cell')
    op.drop_table('stat_publication')
    op.drop_index('ix_score_institution_id', table_name='score')
    op.drop_column('score', 'institution_id')
    for name, _ in reversed(ATTRIBUTES):
        op.drop_column('financial_statement', name)
    if bind.dialect.name == 'postgresql':  # the policies and grants of 0010 (member_isolation.sql skips itself)
        from creditdb.security import apply_sql

        apply_sql(bind)
