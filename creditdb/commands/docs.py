"""``creditdb docs dictionary``: documentation installed with the package."""

from __future__ import annotations

import click


@click.group()
def docs() -> None:
    """Documentation that comes with the installed package.

    \b
    Example:
      creditdb docs dictionary | less
    """


@docs.command("dictionary")
def dictionary() -> None:
    """Print the data dictionary of submissions: columns, types, units, codes and every rule.

    \b
    Example:
      creditdb docs dictionary > data-dictionary.md
    """
    from pipelines.dictionary_doc import render

    click.echo(render(), nl=False)
