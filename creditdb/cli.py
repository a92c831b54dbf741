"""The ``creditdb`` command line: the composition root.

Sub-command modules live in ``creditdb.commands`` and are imported only when used,
and they import heavy libraries (pandas, Great Expectations, LightGBM) inside the
command functions, so ``creditdb --help`` stays fast.
"""

from __future__ import annotations

import importlib

import click

from creditdb import __version__

#: command name -> "module:attribute"
COMMANDS = {
    "init": "creditdb.commands.init:init",
    "institution": "creditdb.commands.institution:institution",
    "submit": "creditdb.commands.submit:submit",
    "submissions": "creditdb.commands.submit:submissions",
    "synth": "creditdb.commands.synth:synth",
    "demo": "creditdb.commands.demo:demo",
    "guarantee": "creditdb.commands.guarantee:guarantee",
    "model": "creditdb.commands.model:model",
    "audit": "creditdb.commands.audit:audit",
    "score": "creditdb.commands.score:score",
    "stats": "creditdb.commands.stats:stats",
    "fx": "creditdb.commands.fx:fx",
    "scheme": "creditdb.commands.scheme:scheme",
    "security": "creditdb.commands.security:security",
    "docs": "creditdb.commands.docs:docs",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own exits (--help, usage errors): nothing to classify, import nothing
        except Exception as exc:
            from creditdb.db import TRANSIENT_SQLSTATES, sqlstate
            from creditdb.settings import ConfigError
            from models.fx import FxError

            if isinstance(exc, ConfigError | FxError):  # a setting, or a rate missing: no traceback
                click.secho(f"error: {exc}", fg="red", err=True)
                ctx.exit(1)
            orig = getattr(exc, "orig", None) or exc
            state = sqlstate(exc)
            if state == "42501":  # PostgreSQL refused: row-level security or a missing grant
                msg = str(orig).splitlines()[0]
                hint = (" (a bank's or agency's login reads and writes only its own institution's rows)"
                        if "row-level security" in msg else "")
                click.secho(f"error: permission denied: {msg}{hint}", fg="red", err=True)
                ctx.exit(1)
            if state in TRANSIENT_SQLSTATES:
                click.secho(f"error: the database aborted the transaction because of concurrent work "
                            f"({str(orig).splitlines()[0]}); nothing was written, run the command again",
                            fg="red", err=True)
                ctx.exit(1)
            raise


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="creditdb")
def cli() -> None:
    """creditdb: SME credit-risk database, rating model and guarantee pricing.

    The database is chosen by CREDITDB_URL (default: sqlite:///creditdb.sqlite in the
    working directory). Every command has --help with an example.

    \b
    Quick start:
      creditdb demo                       # everything, on an embedded database
      creditdb init                       # create / upgrade the schema
      creditdb institution add BK1 --name "First Bank" --kind bank --country JP
      creditdb submit statements s.csv --institution BK1
    """


def main() -> None:
    cli(prog_name="creditdb")


if __name__ == "__main__":  # pragma: no cover
    main()
