"""``creditdb stats``: the published statistics service (CRD style), k-anonymous."""

from __future__ import annotations

import datetime as dt
import html
import sys
from pathlib import Path

import click

from creditdb.output import emit_json, write_safe_csv

DIMENSION_NAMES = ("industry", "region", "size", "year")


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]



def _records(table) -> list[dict]:
    """Rows as JSON-ready dicts: blanks as None, counts as int (15 significant digits)."""
    import json

    return json.loads(table.to_json(orient="records", double_precision=15))


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _text_table(records: list[dict], by: list[str], ratios: list[str]) -> str:
    stat_cols = ["count", "mean", "median", "std", "p30", "p70"]
    head = [*by, "population", "firms", "stmts", "defaults", "def.rate", *stat_cols, "suppressed"]
    lines = []
    for ratio in ratios:
        rows = [r for r in records if r["ratio"] == ratio]
        body = [[_fmt(r[b]) for b in by] + [r["population"], _fmt(r["firms"]), _fmt(r["statements"]),
                                            _fmt(r["defaults"]), _fmt(r["default_rate"])]
                + [_fmt(r[c]) for c in stat_cols] + [r["suppressed"] or ""] for r in rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
        lines.append(f"{ratio}:")
        lines.append("  " + "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=False)))
        lines.extend("  " + "  ".join(c.rjust(w) for c, w in zip(b, widths, strict=False)) for b in body)
        lines.append("")
    return "\n".join(lines)


def _write_csv(path: Path, table) -> None:
    """CSV of the table; text values that a spreadsheet would run as a formula are neutralised."""
    write_safe_csv(table, path)


def _write_html(path: Path, records: list[dict], columns: list[str], meta: dict) -> None:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    rows = []
    for r in records:
        cls = f' class="{esc(r["suppressed"])}"' if r["suppressed"] else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{esc(_fmt(r[c]))}</td>" for c in columns) + "</tr>")
    title = f"creditdb statistics by {', '.join(meta['by']) or 'total'} (k = {meta['k']})"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font-family:sans-serif;margin:1em}} table{{border-collapse:collapse;font-size:12px}}
th,td{{border:1px solid #ccc;padding:2px 6px;text-align:right}} th{{background:#eee}}
tr.primary td,tr.complementary td{{color:#888;background:#f6f6f6}}
</style></head><body>
<h1>{esc(title)}</h1>
<p>Statements in force at {esc(meta['as_of'])}. Cells with fewer than {meta['k']} distinct firms are
suppressed (primary); further cells are suppressed (complementary) so that totals do not reveal them.
Percentiles: linear interpolation. Default rate: defaults / labelled statements (one-year horizon).</p>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    path.write_text(doc, encoding="utf-8")


def _dimensions_and_ratios(by_: str, ratios: str | None) -> tuple[list[str], list[str]]:
    from pipelines.statistics import RATIOS

    by = _split(by_)
    bad = [b for b in by if b not in DIMENSION_NAMES]
    if bad or len(set(by)) != len(by):
        raise click.BadParameter(f"{', '.join(bad) or 'repeated dimension'}: choose from "
                                 f"{', '.join(DIMENSION_NAMES)}, each once", param_hint="--by")
    chosen = _split(ratios) or list(RATIOS)
    bad = [r for r in chosen if r not in RATIOS]
    if bad:
        raise click.BadParameter(f"unknown ratio(s) {', '.join(bad)}; known: {', '.join(RATIOS)}",
                                 param_hint="--ratios")
    return by, chosen


REGION_DIMENSIONS = ("country", "size_class", "industry", "year")


def _reasons_text(unknown: dict[str, list[dict]]) -> str:
    """"Why some firms have no class": per country, firm-years by reason (blank: suppressed)."""
    if not unknown:
        return "\nWhy some firms have no class: every firm-year has a class."
    lines = ["", "Why some firms have no class (firm-years; blank: suppressed):"]
    for country, rows in unknown.items():
        lines.append(f"  {country}:")
        width = max(len(_fmt(r["firm_years"])) for r in rows)
        for r in rows:
            tag = f"  [{r['suppressed']}]" if r["suppressed"] else ""
            lines.append(f"    {_fmt(r['firm_years']).rjust(max(width, 1))}  {r['reason_code']}: {r['reason']}{tag}")
    return "\n".join(lines)


def _region(by: list[str], classes: str, currency: str | None, k: int, when: dt.datetime,
            csv_path: Path | None, html_path: Path | None, as_json: bool) -> None:
    """The ASEAN SME database view (``--by country,size_class``): see pipelines/sme_database.py."""
    from tqdm import tqdm

    from creditdb.output import open_engine, reject
    from models.fx import FxError
    from pipelines.fx import rate_table, reporting_currency
    from pipelines.sme_database import reasons_by_country, region_view, write_report

    bad = [b for b in by if b not in REGION_DIMENSIONS]
    if bad or len(set(by)) != len(by):
        raise click.BadParameter(f"{', '.join(bad) or 'repeated dimension'}: with country or size_class choose "
                                 f"from {', '.join(REGION_DIMENSIONS)}, each once", param_hint="--by")
    target = (currency or reporting_currency()).upper()
    engine = open_engine()
    with tqdm(total=1, desc="statistics", disable=None, file=sys.stderr) as bar:
        with engine.connect() as conn:
            rates = rate_table(conn)
        try:
            table, reasons = region_view(engine, rates, by, target, classes=classes, k=k, as_of=when)
        except FxError as exc:
            reject(str(exc), {"currency": exc.currency, "date": exc.day.isoformat()}, as_json=as_json)
        bar.update(1)
    meta = {"by": by, "k": k, "classes": classes, "currency": target, "as_of": when.isoformat(),
            "view": "sme_database"}
    records = _records(table) if len(table) else []
    if csv_path:
        _write_csv(csv_path, table)
    if html_path:
        write_report(table, str(html_path), meta, reasons)
    unknown = reasons_by_country(reasons)
    if as_json:
        emit_json({**meta, "rows": records, "unknown_class": unknown})
        return
    if not records:
        click.echo("no statements in force: nothing to publish")
        return
    cols = [*by, "firms", "statements", "default_rate", "firms_latest", "employment", "sales",
            *[c for c in table.columns if c.startswith("median_")], "suppressed", "suppressed_sums"]
    body = [[_fmt(r[c], 3) if not isinstance(r[c], float) or abs(r[c]) < 1e3 else f"{r[c]:,.0f}" for c in cols]
            for r in records]
    head = [c.replace("median_", "med.") if c != "sales" else f"sales {target}" for c in cols]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    click.echo("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for b in body:
        click.echo("  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)))
    click.echo(_reasons_text(unknown))
    for p in (csv_path, html_path):
        if p:
            click.echo(f"written: {p}")


@click.group(invoke_without_command=True)
@click.option("--by", "by_", default="industry", show_default=True,
              help="Comma-separated dimensions: industry, region, size, year; or, for the ASEAN SME "
                   "database view, country, size_class (with industry, year).")
@click.option("--classes", type=click.Choice(["national", "harmonised"]), default=None,
              help="Size classes of the size_class dimension: each country's SME rule in force at the "
                   "fiscal year end (national, default) or OECD/Eurostat by persons employed (harmonised).")
@click.option("--currency", default=None,
              help="Reporting currency of sales (default CREDITDB_REPORTING_CURRENCY, else USD).")
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Minimum distinct firms of a published cell.")
@click.option("--ratios", default=None, help="Comma-separated ratios (default: every numeric feature).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Use the data as it stood at this date (default: now, UTC).")
@click.option("--no-margins", is_flag=True, help="Publish only the full cross-classification, no totals.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a CSV file.")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a self-contained HTML table.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def stats(ctx: click.Context, by_: str, classes: str | None, currency: str | None, k: int, ratios: str | None,
          as_of: dt.datetime | None, no_margins: bool, csv_path: Path | None, html_path: Path | None,
          as_json: bool) -> None:
    """Statistics of the statements you can read (a member: its own), and the pool-wide
    statistics the operator publishes (``stats publish``, ``stats published``).

    Without a sub-command: per cell, firms, statements, default rate and the count,
    mean, median, standard deviation and 30th / 70th percentiles of each ratio, for
    all statements and split by default / non-default.

    Cells are the combinations of the --by dimensions plus every subtotal (value
    "all"). A cell with fewer than --k distinct firms is suppressed ("primary"),
    and further cells are suppressed ("complementary") so that no suppressed cell
    can be recovered from a total by subtraction (algorithm and limits:
    models/statistics.py). Ratios: models/specs/features.toml. Default label: a
    default event within 12 months after the statement is available (fiscal year
    end + 3 months).

    \b
    Example:
      creditdb stats --by industry,size --k 5
      creditdb stats --by industry,year --ratios equity_ratio,roa --json
      creditdb stats --by region --csv stats.csv --html stats.html
      creditdb stats publish --by industry,size      # operator: pool-wide, for members
      creditdb stats published                       # anyone: the latest publication
      creditdb stats --by country,size_class --classes harmonised --currency USD --html asean.html
    """
    if ctx.invoked_subcommand is not None:
        return
    from tqdm import tqdm

    from creditdb.output import open_engine
    from pipelines.statistics import statistics

    if classes or {"country", "size_class"} & set(_split(by_)):
        when = as_of.replace(tzinfo=dt.UTC) if as_of else dt.datetime.now(dt.UTC)
        _region(_split(by_), classes or "national", currency, k, when, csv_path, html_path, as_json)
        return
    by, chosen = _dimensions_and_ratios(by_, ratios)
    when = as_of.replace(tzinfo=dt.UTC) if as_of else dt.datetime.now(dt.UTC)
    with tqdm(total=1, desc="statistics", disable=None, file=sys.stderr) as bar:
        table = statistics(open_engine(), by, chosen, k=k, as_of=when, margins=not no_margins)
        bar.update(1)
    records = _records(table)
    columns = list(table.columns)
    meta = {"by": by, "k": k, "ratios": chosen, "as_of": when.isoformat(), "margins": not no_margins}
    if csv_path:
        _write_csv(csv_path, table)
    if html_path:
        _write_html(html_path, records, columns, meta)
    if as_json:
        emit_json({**meta, "rows": records})
        return
    if not records:
        click.echo("no statements in force: nothing to publish")
        return
    click.echo(_text_table(records, by, chosen))
    n_cells = len({tuple(r[c] for c in [*by, "population"]) for r in records})
    hidden = {tuple(r[c] for c in [*by, "population"]): r["suppressed"] for r in records if r["suppressed"]}
    click.echo(f"{n_cells} cells x populations, {sum(v == 'primary' for v in hidden.values())} suppressed "
               f"(fewer than {k} firms), {sum(v == 'complementary' for v in hidden.values())} suppressed "
               f"to protect them (complementary)")
    for p in (csv_path, html_path):
        if p:
            click.echo(f"written: {p}")


def _summary_line(table, by: list[str]) -> str:
    keys = [*by, "population"]
    cells = {tuple(r): s for *r, s in table[[*keys, "suppressed"]].itertuples(index=False, name=None)}
    rows = table["suppressed"]
    return (f"{len(cells)} cells x populations; rows of cell x ratio: {len(table)}, "
            f"{int((rows == 'primary').sum())} primary, {int((rows == 'complementary').sum())} complementary, "
            f"{int((rows == 'dominance').sum())} dominated ratio(s) suppressed")


@stats.command("publish")
@click.option("--by", "by_", default="industry", show_default=True,
              help="Comma-separated dimensions: industry, region, size, year.")
@click.option("--ratios", default=None, help="Comma-separated ratios (default: every numeric feature).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Use the data as it stood at this date (default: now, UTC).")
@click.option("--no-margins", is_flag=True, help="Publish only the full cross-classification, no totals.")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Disclosure policy (TOML; default: models/data/disclosure_policy.toml).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def publish_cmd(by_: str, ratios: str | None, as_of: dt.datetime | None, no_margins: bool,
                policy_path: Path | None, as_json: bool) -> None:
    """Publish pool-wide statistics for every member to read (operator).

    Every statement in force, of every institution, is used. A cell is stored only if at
    least k firms remain after removing the firms any ONE institution knows; a ratio of
    a cell is blanked when it is dominated (p% rule, (n,k) rule); complementary cells
    are blanked so that no hidden one follows from a total. Parameters: the policy file
    (rules: models/disclosure.py). Suppressed statistics are never stored.

    \b
    Example:
      creditdb stats publish --by industry,size
      creditdb stats publish --by industry,year --ratios equity_ratio,roa --policy my_policy.toml --json
    """
    from tqdm import tqdm

    from creditdb.output import open_engine, reject
    from creditdb.settings import get_settings
    from models.disclosure import load_policy
    from pipelines.publish_stats import NothingToPublish, publish

    by, chosen = _dimensions_and_ratios(by_, ratios)
    try:
        policy = load_policy(policy_path)
    except ValueError as exc:
        reject(str(exc), as_json=as_json)
    when = as_of.replace(tzinfo=dt.UTC) if as_of else dt.datetime.now(dt.UTC)
    with tqdm(total=1, desc="publish", disable=None, file=sys.stderr) as bar:
        try:
            pub = publish(open_engine(), by, chosen, policy, actor=get_settings().actor, as_of=when,
                          margins=not no_margins)
        except NothingToPublish as exc:
            reject(str(exc), as_json=as_json)
        bar.update(1)
    if as_json:
        emit_json({"ok": True, **pub.meta, "rows": len(pub.table)})
        return
    click.echo(f"publication {pub.meta['id']}: by {', '.join(by) or 'total'}, statements in force at "
               f"{when.isoformat()}, policy k = {policy.k}, p = {policy.p_percent} %, "
               f"(n, k) = ({policy.n}, {policy.k_percent} %)")
    if len(pub.table):
        click.echo(_summary_line(pub.table, by))


@stats.command("published")
@click.option("--id", "publication_id", type=int, default=None, help="Publication id (default: the latest).")
@click.option("--list", "list_all", is_flag=True, help="List the publications instead.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a CSV file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def published_cmd(publication_id: int | None, list_all: bool, csv_path: Path | None, as_json: bool) -> None:
    """Read published pool-wide statistics (any member, agency, supervisor, operator).

    Blank values are suppressed ("primary": too few firms unknown to some institution;
    "complementary": protects another cell; "dominance": a few firms dominate the ratio).

    \b
    Example:
      creditdb stats published
      creditdb stats published --list
      creditdb stats published --id 3 --csv pool.csv --json
    """
    from creditdb.output import open_engine, reject
    from pipelines.publish_stats import NothingPublished, list_publications, published

    engine = open_engine()
    if list_all:
        pubs = list_publications(engine)
        if as_json:
            emit_json({"publications": pubs})
            return
        if not pubs:
            click.echo("no statistics are published yet")
        for p in pubs:
            click.echo(f"{p['id']:>5}  {p['published_at']:%Y-%m-%d %H:%M}  by {', '.join(p['dimensions']) or 'total'}"
                       f"  as of {p['as_of']:%Y-%m-%d}  {p['cells']} cells, {p['suppressed']} rows suppressed")
        return
    try:
        pub = published(engine, publication_id)
    except NothingPublished as exc:
        reject(str(exc), as_json=as_json)
    by = list(pub.meta["dimensions"])
    records = _records(pub.table)
    if csv_path:
        _write_csv(csv_path, pub.table)
    if as_json:
        emit_json({**pub.meta, "rows": records})
        return
    click.echo(f"publication {pub.meta['id']} of {pub.meta['published_at']:%Y-%m-%d %H:%M} (statements in force at "
               f"{pub.meta['as_of']:%Y-%m-%d}), policy k = {pub.meta['policy']['k']}")
    ratios = list(pub.meta["ratios"])
    click.echo(_text_table(records, by, ratios))
    click.echo(_summary_line(pub.table, by))
    if csv_path:
        click.echo(f"written: {csv_path}")
