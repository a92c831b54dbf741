"""``creditdb submit statements|loans|defaults FILE`` and ``creditdb submissions list|show``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from creditdb.output import EXIT_REJECTED, emit_json, neutralise_formula, open_engine, reject

SHOWN_ISSUES = 20


def _print_result(res: dict) -> None:
    name = res["file"]
    status = res["status"]
    if status == "duplicate":
        d = res["duplicate_of"]
        click.secho(f"{name}: refused: the same file was already submitted as submission {d['submission_id']} "
                    f"by {d['institution']} on {str(d['received_at'])[:19]} (creditdb submissions show "
                    f"{d['submission_id']})", fg="red", err=True)
        return
    for b in res["blocking"]:
        where = ", ".join(p for p in (f"file {b['file']}", b["row"] and f"row {b['row']}",
                                      b["column"] and f"column '{b['column']}'") if p)
        click.secho(f"{where}: {b['message']} [{b['rule']}]", fg="red", err=True)
    colour = {"loaded": "green", "partial": "yellow", "rejected": "red"}[status]
    refused = "refused" if res["strict"] and res.get("rows_failed") else "rejected"
    click.secho(f"{name}: {status}: {res['rows_loaded']} of {res['rows_total']} rows loaded, "
                f"{res['rows_rejected']} {refused}, {res['warnings']} warnings", fg=colour)
    if res["submission_id"]:
        click.echo(f"  submission {res['submission_id']}: {res['firms_new']} new firms, "
                   f"{res['firms_linked']} linked to firms other institutions submitted"
                   + (f", {res['superseded']} statements supersede earlier ones" if res.get("superseded") else ""))
    if res["issue_counts"]:
        click.echo("  findings by rule:")
        for rule, n in res["issue_counts"].items():
            click.echo(f"    {n:>8}  {rule}")
        shown = res["issues"][:SHOWN_ISSUES]
        click.echo(f"  first {len(shown)} findings (row: column = value: problem):")
        for i in shown:
            where = ", ".join([name] + ([f"row {i['row']}"] if i["row"] is not None else [])
                              + ([f"column '{i['column']}'"] if i["column"] is not None else []))
            value = f" = {i['value']!r}" if i["value"] is not None else ""
            click.echo(f"    {where}{value}: {i['message']} [{i['severity']}:{i['rule']}]")
    _print_quality(res.get("quality") or {})
    if status == "rejected" and res["strict"] and res.get("rows_failed"):
        click.echo(f"  --strict: all {res['rows_total']} rows were refused because {res['rows_failed']} failed a "
                   "rule; nothing was stored.")
    elif status == "rejected" and not res["blocking"]:
        click.echo("  no row passed validation; nothing was stored.")


def _print_quality(q: dict) -> None:
    """The data-quality report (pipelines.quality_report) as text."""
    if not q:
        return
    read = q.get("read") or {}
    if read:
        parts = [read.get("format", "")]
        if "encoding" in read:
            how = read.get("how")
            parts.append(f"encoding {read['encoding']}" + (f" (detected, confidence {read['confidence']:.2f})"
                                                           if how == "detected" else f" ({how})"))
        if "delimiter" in read:
            parts.append(f"delimiter '{read['delimiter']}'")
        if "sheet" in read:
            parts.append(f"sheet '{read['sheet']}'")
        parts.append(f"decimal mark '{read.get('decimal', '.')}'")
        click.echo("  read as: " + ", ".join(p for p in parts if p))
        if read.get("decimal_note"):
            click.echo(f"    {read['decimal_note']}")
        if read.get("columns_renamed"):
            click.echo("    columns matched: " + ", ".join(f"'{a}' -> {b}" for a, b in read["columns_renamed"].items()))
        if read.get("columns_ignored"):
            click.echo("    columns ignored (not in the data dictionary): "
                       + ", ".join(f"'{c}'" for c in read["columns_ignored"]))
    rates = q.get("fill_rate") or {}
    partial = {c: r for c, r in rates.items() if r is not None and r < 1}
    if q.get("rows"):
        click.echo(f"  data quality ({q['rows']} rows): " + (
            "every column filled" if not partial else
            "fill rate below 100 %: "
            + ", ".join(f"{c} {r:.0%}" for c, r in sorted(partial.items(), key=lambda x: x[1]))))
    for m in q.get("missing_model_items") or []:
        click.secho(f"    rating model: {m['effect']}", fg="yellow")
    for rule, n in (q.get("plausibility") or {}).items():
        click.echo(f"    plausibility: {n} x {rule}")


def _write_report(path: Path, res: dict) -> None:
    rows = res["blocking"] + res["issues"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "row", "column", "value", "rule", "severity", "message"],
                           extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: neutralise_formula(v) for k, v in {**r, "file": res["file"]}.items()})



#: tries of a submission the database aborted because of concurrent work
SUBMIT_ATTEMPTS = 3


def _submit(kind: str, file: Path, institution: str, strict: bool, as_json: bool, report: Path | None,
            read_options: dict | None = None) -> None:
    from creditdb.anonymise import pseudonymiser
    from creditdb.db import TRANSIENT_SQLSTATES, sqlstate
    from creditdb.settings import ConfigError, get_settings
    from pipelines.column_mapping import ProfileError, SourceProfile, load_profile
    from pipelines.ingest import UnknownInstitution, submit_file
    from pipelines.profiles import stored_profile

    engine = open_engine()
    settings = get_settings()
    try:
        key = pseudonymiser(engine, settings)
    except ConfigError as exc:
        reject(str(exc), as_json=as_json)
    from creditdb.security import SecurityError, acting_for

    try:
        with engine.connect() as conn:  # a clear refusal before any work (RLS would refuse anyway)
            acting_for(conn, institution)
    except SecurityError as exc:
        reject(f"permission denied: {exc}", as_json=as_json)
    options = dict(read_options or {})
    mapping = options.pop("mapping", None)
    try:
        if mapping is not None:
            profile = load_profile(mapping)
        else:
            from sqlalchemy import select

            from creditdb.schema import Institution

            with engine.connect() as conn:
                inst_id = conn.execute(select(Institution.id).where(Institution.code == institution)).scalar()
                profile = (stored_profile(conn, inst_id) if inst_id is not None else None) or SourceProfile()
        profile = profile.with_options(**options)
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        try:
            result = submit_file(engine, kind, file, institution, key=key, actor=settings.actor, strict=strict,
                                 profile=profile)
            break
        except (UnknownInstitution, ConfigError, PermissionError) as exc:
            reject(str(exc), as_json=as_json)
        except Exception as exc:
            # two banks creating the same new firms at once can deadlock in PostgreSQL; the
            # whole submission was rolled back, so it is simply submitted again
            if sqlstate(exc) not in TRANSIENT_SQLSTATES or attempt == SUBMIT_ATTEMPTS:
                raise
            click.echo(f"{file}: concurrent submission conflict, nothing stored; retrying ({attempt}/"
                       f"{SUBMIT_ATTEMPTS - 1})", err=True)
    res = result.as_dict()
    if report:
        _write_report(report, res)
    if as_json:
        emit_json(res)
    else:
        _print_result(res)
        if report:
            click.echo(f"  full report: {report}")
    if result.status != "loaded":
        sys.exit(EXIT_REJECTED)


def _command(kind: str, example_file: str, help_text: str) -> click.Command:
    @click.command(name=kind, help=help_text + f"""

    FILE is a CSV (any encoding: detected and named in the report, or --encoding;
    comma, semicolon or tab), an Excel workbook (.xlsx; the first sheet or --sheet)
    or Parquet. Headers match the data dictionary ignoring case, spaces and
    punctuation; a bank's own names and codes come from --mapping or the
    institution's stored profile (creditdb institution profile --help). Numbers may
    have thousands separators, (parentheses) negatives and currency signs; dates
    may be 31/03/2023, 2024/03/31, 20240331 or Excel serials; an ambiguous date
    (01/02/2023) needs --date-format.

    Rows failing a *row* rule are rejected and the rest loaded (exit code 1 tells
    that something was rejected); --strict refuses the whole file instead. A file
    with a *blocking* problem (unreadable, missing required column) is rejected
    whole. Nothing is stored for a rejected file. A data-quality report (fill rates,
    missing items the rating model uses, plausibility warnings) follows every
    submission and is stored with it. Columns, units and codes: creditdb docs dictionary.

    \b
    Example:
      creditdb submit {kind} {example_file} --institution BK1
      creditdb submit {kind} {example_file} --institution BK1 --strict --json
      creditdb submit {kind} export.csv -i BK1 --encoding cp932 --date-format %d/%m/%Y
      creditdb submit {kind} export.xlsx -i BK1 --sheet Data --mapping bank.toml
    """)
    @click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True, readable=True))
    @click.option("--institution", "-i", required=True, help="Code of the submitting institution.")
    @click.option("--strict", is_flag=True, help="Reject the whole file if any row fails.")
    @click.option("--report", type=click.Path(path_type=Path, dir_okay=False),
                  help="Write every finding (file, row, column, value, rule) to this CSV.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
    @click.option("--mapping", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                  help="The bank's column names, codes and formats (TOML or JSON; instead of the stored profile).")
    @click.option("--encoding", help="Text encoding of a CSV, e.g. utf-8, utf-16, cp932, cp1252, cp874, cp1258 "
                                     "(default: UTF-8, else detected and named in the report).")
    @click.option("--delimiter", type=click.Choice([",", ";", "tab", "|"]),
                  help="CSV field delimiter (default: detected from the header line).")
    @click.option("--sheet", help="Excel sheet to read (default: the first).")
    @click.option("--decimal", type=click.Choice([".", ","]),
                  help="Decimal mark (default '.', ',' in a semicolon-separated file).")
    @click.option("--thousands", type=click.Choice([",", ".", "space", "'"]),
                  help="Thousands separator (default: the other of '.' and ',', in groups of three).")
    @click.option("--date-format", help="strftime pattern of the file's dates, e.g. %d/%m/%Y or %m/%d/%Y "
                                        "(needed only for ambiguous dates such as 01/02/2023).")
    def cmd(file: Path, institution: str, strict: bool, report: Path | None, as_json: bool, mapping: Path | None,
            encoding: str | None, delimiter: str | None, sheet: str | None, decimal: str | None,
            thousands: str | None, date_format: str | None) -> None:
        _submit(kind, file, institution, strict, as_json, report,
                {"mapping": mapping, "encoding": encoding, "delimiter": delimiter, "sheet": sheet,
                 "decimal": decimal, "thousands": " " if thousands == "space" else thousands,
                 "date_format": date_format})

    return cmd


@click.group()
def submit() -> None:
    """Submit a CSV, Excel or Parquet file of statements, loans or defaults.

    Columns, units and codes: creditdb docs dictionary.

    \b
    Example:
      creditdb submit statements statements.csv --institution BK1
      creditdb submit loans loans.xlsx --institution BK1 --json
    """


submit.add_command(_command("statements", "statements.csv", "Submit SME financial statements."))
submit.add_command(_command("loans", "loans.parquet", "Submit loans to SMEs."))
submit.add_command(_command("defaults", "defaults.csv", "Submit default (credit) events."))


@click.group()
def submissions() -> None:
    """Browse earlier submissions and their validation and data-quality reports.

    \b
    Example:
      creditdb submissions list --institution BK1
      creditdb submissions show 3
    """


@submissions.command("list")
@click.option("--institution", "-i", help="Only this institution's submissions.")
@click.option("--json", "as_json", is_flag=True)
def list_(institution: str | None, as_json: bool) -> None:
    """List submissions, newest first.

    \b
    Example:
      creditdb submissions list --institution BK1
    """
    from sqlalchemy import select

    from creditdb.schema import Institution, Submission

    engine = open_engine()
    stmt = (select(*Submission.__table__.c, Institution.code)
            .join(Institution, Institution.id == Submission.institution_id).order_by(Submission.id.desc()))
    if institution:
        stmt = stmt.where(Institution.code == institution)
    with engine.connect() as conn:
        rows = [_summary(r, r.code) for r in conn.execute(stmt).all()]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no submissions yet")
        return
    click.echo(f"{'id':>5}  {'received (UTC)':<19}  {'inst.':<8} {'kind':<10} {'status':<8} "
               f"{'loaded':>16} {'rejected':>16}  file")
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['received_at'][:19]}  {r['institution']:<8} {r['kind']:<10} {r['status']:<8} "
                   f"{r['rows_loaded']:>9} loaded {r['rows_rejected']:>7} rejected  {r['file_name']}")


def _summary(r, code: str) -> dict:
    return {"id": r.id, "institution": code, "kind": r.kind, "file_name": r.file_name, "status": r.status,
            "rows_total": r.rows_total, "rows_loaded": r.rows_loaded, "rows_rejected": r.rows_rejected,
            "warnings": r.warnings, "firms_new": r.firms_new, "firms_linked": r.firms_linked,
            "sha256": r.file_sha256, "received_at": str(r.received_at)}


@submissions.command("show")
@click.argument("submission_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(submission_id: int, as_json: bool) -> None:
    """Show one submission with its validation report.

    \b
    Example:
      creditdb submissions show 3 --json
    """
    from sqlalchemy import select

    from creditdb.schema import Institution, Submission

    engine = open_engine()
    with engine.connect() as conn:
        r = conn.execute(select(*Submission.__table__.c, Institution.code)
                         .join(Institution, Institution.id == Submission.institution_id)
                         .where(Submission.id == submission_id)).first()
    if r is None:
        reject(f"no submission {submission_id}", as_json=as_json)
    out = {**_summary(r, r.code), "strict": r.strict, "report": r.report}
    if as_json:
        emit_json(out)
        return
    for k, v in out.items():
        if k != "report":
            click.echo(f"{k:>14}: {v}")
    _print_quality(r.report.get("quality") or {})
    counts = r.report.get("issue_counts", {})
    if counts:
        click.echo("findings by rule:")
        for rule, n in counts.items():
            click.echo(f"  {n:>8}  {rule}")
        for i in r.report.get("issues", [])[:SHOWN_ISSUES]:
            click.echo(f"  row {i['row']}, column '{i['column']}' = {i['value']!r}: {i['message']}")
