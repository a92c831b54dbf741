"""Engine, sessions and schema migration (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from creditdb.settings import Settings, get_settings

MIGRATIONS = Path(__file__).with_name("migrations")

#: PostgreSQL errors that roll a transaction back because of concurrent work (deadlock,
#: serialization failure): safe to retry, since nothing of the transaction was written
TRANSIENT_SQLSTATES = ("40P01", "40001")


def sqlstate(exc: BaseException) -> str | None:
    """SQLSTATE of a database error, raised by SQLAlchemy (wrapping the driver's) or by psycopg itself."""
    for e in (getattr(exc, "orig", None), exc):
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and type(e).__module__.split(".")[0] in ("psycopg", "sqlalchemy"):
            return state
    return None


def make_engine(url: str | None = None) -> Engine:
    """Create an engine for ``url`` (default: ``CREDITDB_URL``)."""
    url = url or get_settings().url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with sessionmaker(engine, expire_on_commit=False)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the latest)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the migration chain has no head"
    return head


def is_initialised(engine: Engine) -> bool:
    return "alembic_version" in inspect(engine).get_table_names() and (
        current_revision(engine) == head_revision()
    )


def settings_engine(settings: Settings | None = None) -> Engine:
    return make_engine((settings or get_settings()).url)
