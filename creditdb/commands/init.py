"""``creditdb init``: create or upgrade the database schema."""

from __future__ import annotations

import click

from creditdb.output import emit_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(as_json: bool) -> None:
    """Create the database or bring it to the latest schema revision.

    SQLite: creates the pseudonym key file beside the database. PostgreSQL (run as
    the tables' owner): applies roles and row-level security and, when the database
    has no pseudonym key yet, stores one inside the server: CREDITDB_PSEUDONYM_KEY if
    set (to keep the pseudonyms of an existing database), else 32 random bytes that
    nobody ever sees.

    \b
    Example:
      CREDITDB_URL=postgresql+psycopg://postgres@127.0.0.1/credit creditdb init
    """
    from creditdb.db import current_revision, make_engine, upgrade
    from creditdb.settings import get_settings

    engine = make_engine()
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    url = engine.url.render_as_string(hide_password=True)
    key_note = None
    if get_settings().is_sqlite:
        from creditdb.settings import pseudonym_key

        pseudonym_key()  # create the embedded key file now, not in the middle of a load
    else:
        from creditdb.security import ensure_key

        with engine.begin() as conn:
            key_note = ensure_key(conn)
    if as_json:
        emit_json({"ok": True, "url": url, "from_revision": before, "revision": after, "key": key_note})
    else:
        click.echo(f"database {url}: revision {before or '(empty)'} -> {after}")
        if key_note:
            click.echo(key_note)
