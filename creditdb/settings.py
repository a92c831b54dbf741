"""Run-time settings read from the environment.

``CREDITDB_URL``            SQLAlchemy URL; default ``sqlite:///creditdb.sqlite`` in the
                            working directory (the embedded, single-user mode).
``CREDITDB_PSEUDONYM_KEY``  hex or text secret for the HMAC-SHA256 pseudonyms. When unset
                            in embedded mode a random key is created once in
                            ``creditdb.key`` beside the SQLite file (mode 0600).
``CREDITDB_ACTOR``          name recorded as the actor of audit events (default: OS user).
"""

from __future__ import annotations

import getpass
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "sqlite:///creditdb.sqlite"
#: length of ``audit_event.actor`` (creditdb/schema.py)
ACTOR_MAX = 100


class ConfigError(RuntimeError):
    """Settings are missing or inconsistent."""


@dataclass(frozen=True)
class Settings:
    url: str
    actor: str

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        tail = self.url.split(":///", 1)[-1]
        return None if tail in ("", ":memory:") else Path(tail)


def get_settings() -> Settings:
    url = os.environ.get("CREDITDB_URL", DEFAULT_URL)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # Always use psycopg 3 (the driver this project depends on): plain postgresql:// would pick psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        actor = os.environ.get("CREDITDB_ACTOR") or getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry in some containers
        actor = "unknown"
    if len(actor) > ACTOR_MAX:
        raise ConfigError(f"CREDITDB_ACTOR is {len(actor)} characters long; the audit trail keeps at most {ACTOR_MAX}")
    return Settings(url=url, actor=actor)


def pseudonym_key(settings: Settings | None = None) -> bytes:
    """Return the secret key for firm pseudonyms (bytes).

    Order: ``CREDITDB_PSEUDONYM_KEY``; else, in SQLite mode, ``creditdb.key`` beside the
    database file (created with 32 random bytes on first use).

    A PostgreSQL database keeps its key inside the server (``creditdb init``) and
    hashes there (:func:`creditdb.anonymise.pseudonymiser`); this function is then
    only for an operator who deliberately holds a copy of the key.
    """
    env = os.environ.get("CREDITDB_PSEUDONYM_KEY")
    if env:
        return env.encode("utf-8")
    settings = settings or get_settings()
    db_path = settings.sqlite_path()
    if db_path is None:
        raise ConfigError(
            "CREDITDB_PSEUDONYM_KEY is not set. A PostgreSQL database hashes with the key "
            "stored in the server (creditdb.anonymise.pseudonymiser); see docs/security.md."
        )
    key_file = db_path.with_name(db_path.stem + ".key") if db_path.suffix else Path(str(db_path) + ".key")
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip().encode("utf-8")
