"""Shared CLI plumbing: JSON output, exit codes, opening the database."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Any, NoReturn

import click

from creditdb.safe_csv import neutralise_formula, neutralise_frame, write_safe_csv

EXIT_REJECTED = 1  # input was rejected (README: 0 all loaded, 1 something rejected, 2 usage error)
EXIT_USAGE = 2  # click's own code for usage errors

__all__ = ["EXIT_REJECTED", "EXIT_USAGE", "emit_json", "neutralise_formula", "neutralise_frame", "open_engine",
           "reject", "to_json", "write_safe_csv"]


def _default(obj: Any) -> Any:
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_ready(obj: Any) -> Any:
    """``obj`` with every float NaN or infinity (Python or numpy, also pandas NA/NaT) as None.

    JSON has no NaN: ``json.dumps`` would write the bare word ``NaN``, which a strict
    parser refuses. Missing is ``null``.
    """
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if getattr(obj, "ndim", 0) and hasattr(obj, "tolist"):  # numpy arrays
        return json_ready(obj.tolist())
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        try:
            return json_ready(obj.item())
        except (TypeError, ValueError):
            return obj
    if obj is not None and type(obj).__name__ in ("NAType", "NaTType"):
        return None
    return obj


def to_json(obj: Any) -> str:
    """Strict JSON text (``allow_nan=False``: NaN and infinities become null first)."""
    return json.dumps(json_ready(obj), default=_default, indent=2, ensure_ascii=False, allow_nan=False)


def emit_json(obj: Any) -> None:
    click.echo(to_json(obj))


def reject(message: str, payload: dict[str, Any] | None = None, as_json: bool = False) -> NoReturn:
    """Report rejected input and exit with code 1."""
    if as_json:
        emit_json({"ok": False, "error": message, **(payload or {})})
    else:
        click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(EXIT_REJECTED)


def open_engine(create: bool = True):
    """Engine for CREDITDB_URL, upgraded to the latest schema (``creditdb init`` implicitly)."""
    from creditdb.db import is_initialised, make_engine, upgrade

    engine = make_engine()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        # give the connections back when the command ends: a login's connection limit
        # (creditdb/policy/roles.toml) must not be used up by pools left to the garbage
        # collector when commands run in one process (tests, notebooks)
        ctx.find_root().call_on_close(engine.dispose)
    if create and not is_initialised(engine):
        upgrade(engine)
        if engine.dialect.name == "postgresql":
            from creditdb.security import ensure_key

            with engine.begin() as conn:
                ensure_key(conn)
    return engine
