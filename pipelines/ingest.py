"""Submission ingest: read -> type -> validate -> anonymise -> load, in one transaction.

A file is streamed in chunks (bounded memory). All chunks are written inside a single
database transaction, so a rejected file, a crash or a killed process leaves the
database exactly as it was. Nothing identifying is written: see ``creditdb.anonymise``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from creditdb import anonymise as anon
from creditdb import audit, lookups
from creditdb.anonymise import Key
from creditdb.bulk import insert_frame, insert_ignore, lookup
from creditdb.lookups import InstitutionRef, UnknownInstitution
from creditdb.overlap import WriteBehind
from creditdb.schema import BorrowerLink, FinancialStatement, Firm, Institution, Submission
from pipelines import dictionary as D
from pipelines import submission_kinds
from pipelines.column_mapping import SourceProfile
from pipelines.profiles import stored_profile
from pipelines.quality_report import MISSING_ITEM_RULE, QualityReport, history_warnings, model_effects
from pipelines.readers import CHUNK_ROWS, FileRejected, inspect_file, iter_chunks
from pipelines.report_scrub import scrub_issues
from pipelines.submission_kinds import KindSpec, firm_attributes
from pipelines.validate import Issue, Validator, coerce, get_validator

__all__ = ["MAX_STORED_ISSUES", "SubmissionResult", "Tally", "UnknownInstitution", "submit_file"]

MAX_STORED_ISSUES = 10_000


class _Abort(Exception):
    """Raised inside the load transaction to roll it back."""


@dataclass
class SubmissionResult:
    """Outcome of one submission. ``status``: loaded | partial | rejected | duplicate."""

    file: str
    kind: str
    institution: str
    status: str
    sha256: str | None = None
    submission_id: int | None = None
    rows_total: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    warnings: int = 0
    firms_new: int = 0
    firms_linked: int = 0
    superseded: int = 0
    issue_counts: dict[str, int] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    blocking: list[dict[str, Any]] = field(default_factory=list)
    duplicate_of: dict[str, Any] | None = None
    strict: bool = False
    #: rows that failed a row rule (under --strict the whole file is refused: rows_rejected = rows_total)
    rows_failed: int = 0
    #: the data-quality report (pipelines.quality_report): fill rates, missing model items, plausibility
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "loaded"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def submit_file(engine: Engine, kind: str, path: Path | str, institution: str, *, key: Key,
                actor: str = "unknown", strict: bool = False, today: dt.date | None = None,
                chunk_rows: int = CHUNK_ROWS, progress: bool | None = None,
                validator: Validator | None = None, profile: SourceProfile | None = None) -> SubmissionResult:
    """Validate and load one submission file; see the module docstring.

    ``profile``: how the bank's file is written (column names, codes, encoding, formats);
    None uses the institution's stored profile, if any.

    Raises ``UnknownInstitution`` when ``institution`` is not registered; every problem
    with the file itself is reported in the returned result (status ``rejected``).
    """
    kind_spec = submission_kinds.spec(kind)
    path = Path(path)
    result = SubmissionResult(file=str(path), kind=kind, institution=institution, status="rejected", strict=strict)
    with engine.connect() as conn:
        inst = lookups.require_institution(conn, institution)
        if profile is None:
            profile = stored_profile(conn, inst.id)
    try:
        info = inspect_file(path, profile, D.names(kind), inst.country)
        result.sha256 = info.sha256
        with engine.connect() as conn:
            earlier = conn.execute(
                select(Submission.id, Submission.received_at, Institution.code)
                .join(Institution, Institution.id == Submission.institution_id)
                .where(Submission.file_sha256 == info.sha256, Submission.kind == kind)
            ).first()
        if earlier is not None:
            result.status = "duplicate"
            result.duplicate_of = {"submission_id": earlier.id, "institution": earlier.code,
                                   "received_at": earlier.received_at}
            return result
        validator = validator or get_validator(kind, today)
        dup_rows = _duplicate_key_rows(info, kind, chunk_rows)
        _load(_Load(engine, kind_spec, info, inst, key, actor, strict, validator, dup_rows, chunk_rows, progress,
                    profile), result)
    except FileRejected as exc:
        result.status = "rejected"
        result.blocking.append(exc.as_dict())
    return result


def _duplicate_key_rows(info, kind: str, chunk_rows: int) -> dict[int, int]:
    """Rows whose file key repeats an earlier row: {row: first row with that key}.

    A first pass keeps only a 64-bit hash of each row's key (16 bytes a row with its row
    number, instead of the key text); a second pass reads the keys of the rows whose hash
    repeats and compares the keys themselves.
    """
    keys = list(D.FILE_KEYS[kind])
    if not set(keys) <= set(info.columns):
        return {}

    def normalised(chunk: pd.DataFrame) -> pd.DataFrame:
        return chunk.assign(**{k: chunk[k].astype("string").str.strip() for k in keys})[keys]

    hashes = [pd.Series(pd.util.hash_pandas_object(normalised(c), index=False).to_numpy(), index=c.index)
              for c in iter_chunks(info, keys, chunk_rows=chunk_rows)]
    if info.rows is None:  # this pass has counted the rows: the progress bar gets its total
        info.rows = int(sum(len(h) for h in hashes))
    if not hashes:
        return {}
    hashed = pd.concat(hashes)
    del hashes
    candidates = hashed.index[hashed.duplicated(keep=False).to_numpy()]
    del hashed
    if len(candidates) == 0:
        return {}
    parts = [normalised(c).loc[c.index.intersection(candidates)] for c in iter_chunks(info, keys, chunk_rows=chunk_rows)]
    frame = pd.concat(parts)
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return {}
    sub = frame[dup]
    first = sub.reset_index().groupby(keys, dropna=False)["row"].transform("min")
    return dict(zip(sub.index.astype(int), first.astype(int), strict=True))


@dataclass(frozen=True)
class _Load:
    """Everything one load needs, fixed before it starts."""

    engine: Engine
    spec: KindSpec
    info: Any  # pipelines.readers.FileInfo
    inst: InstitutionRef
    key: Key
    actor: str
    strict: bool
    validator: Validator
    dup_rows: dict[int, int]
    chunk_rows: int
    progress: bool | None
    profile: SourceProfile | None = None


@dataclass
class _Chunk:
    """A validated chunk waiting for its database stage: rows read, issues, rejected rows."""

    n_rows: int
    issues: list[Issue]
    bad_rows: set[int]


@dataclass
class _Written:
    """What the database stage of one chunk did (``_write``)."""

    loaded: int = 0
    unresolved: list[Issue] = field(default_factory=list)
    #: warnings on the history of firms stored before: another industry or region, a unit jump in sales
    history: list[Issue] = field(default_factory=list)
    firms_new: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))
    firms_seen: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))


@dataclass
class Tally:
    """Running counts of one load: rows, issues by ``severity:rule``, the issues kept, firms.

    Firm ids are NumPy arrays (8 bytes a firm); at most ``MAX_STORED_ISSUES`` issues are kept.
    """

    rows_total: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    stored: list[dict[str, Any]] = field(default_factory=list)
    firms_new: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))
    firms_seen: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))

    def add(self, chunk: _Chunk, written: _Written | None) -> None:
        """Fold one finished chunk (its issues, rejected rows and, if written, loaded rows) in."""
        issues, bad_rows = chunk.issues, chunk.bad_rows
        if written is not None:
            issues += written.unresolved + written.history
            bad_rows |= {i.row for i in written.unresolved}
            self.rows_loaded += written.loaded
            self.firms_new = np.union1d(self.firms_new, written.firms_new)
            self.firms_seen = np.union1d(self.firms_seen, written.firms_seen)
        self.rows_total += chunk.n_rows
        self.rows_rejected += len(bad_rows)
        for issue in sorted(issues, key=lambda i: (i.row, i.column or "")):
            self.counts[f"{issue.severity}:{issue.rule}"] += 1
            if len(self.stored) < MAX_STORED_ISSUES:
                self.stored.append(issue.as_dict())

    def into(self, result: SubmissionResult) -> None:
        """Copy the counts into ``result``."""
        result.rows_total, result.rows_loaded, result.rows_rejected = \
            self.rows_total, self.rows_loaded, self.rows_rejected
        result.warnings = sum(v for k, v in self.counts.items() if k.startswith("warning:"))
        result.issue_counts = dict(sorted(self.counts.items()))
        result.issues = self.stored
        result.firms_new = len(self.firms_new)
        result.firms_linked = len(np.setdiff1d(self.firms_seen, self.firms_new, assume_unique=True))


def _load(job: _Load, result: SubmissionResult) -> None:
    """Validate and write every chunk of the file in one transaction; fill ``result``.

    The database stage of a chunk (firm resolution, COPY) runs in the background while
    the next chunk is read, typed and validated (:class:`creditdb.overlap.WriteBehind`).
    """
    from tqdm import tqdm

    info, spec = job.info, job.spec
    tally = Tally()
    disable = job.progress is False or (job.progress is None and not sys.stderr.isatty())
    bar = tqdm(total=info.rows, unit="rows", desc=info.path.name, disable=disable, leave=False, mininterval=0.5)
    quality = QualityReport(spec.kind, info.columns)
    for note in info.notes:  # file-level findings: a misspelt column, a detected encoding
        tally.counts[f"{note['severity']}:{note['rule']}"] += 1
        tally.stored.append(note)

    def account(done: tuple[_Chunk, _Written | None] | None) -> None:
        if done is not None:
            tally.add(*done)
            bar.update(done[0].n_rows)

    try:
        with job.engine.begin() as conn:
            sub_id = conn.execute(Submission.__table__.insert().values(
                institution_id=job.inst.id, kind=spec.kind, file_name=info.path.name, file_sha256=info.sha256,
                status="loading", strict=job.strict, rows_total=0, rows_loaded=0, rows_rejected=0,
                report={}, received_at=dt.datetime.now(dt.UTC),
            ).returning(Submission.id)).scalar_one()
            first = True
            with WriteBehind[_Chunk]("creditdb-copy") as behind:
                for raw in iter_chunks(info, D.names(spec.kind), chunk_rows=job.chunk_rows):
                    if first:
                        blocking = job.validator.check_columns(raw, str(info.path))
                        if blocking:
                            result.blocking.extend(blocking)
                            raise _Abort
                        first = False
                    chunk, good = _validate_chunk(job, raw, quality)
                    hashes = _pseudonyms(spec, good, job.inst, job.key)
                    account(behind.finish())  # wait for the previous chunk's database stage
                    write = not (job.strict and (chunk.bad_rows or tally.rows_rejected))
                    behind.start(chunk, *((_write, conn, spec, good, hashes, job.inst, sub_id) if write else ()))
                    del good, hashes, raw
                account(behind.finish())
            if first:
                result.blocking.append({"file": str(info.path), "row": None, "column": None, "rule": "table.not_empty",
                                        "severity": "blocking", "message": "the file has no data rows"})
                raise _Abort
            effects = model_effects(conn) if spec.kind == "statements" else None
            result.quality = quality.finish(dict(tally.counts), info.read_report(), model_effects=effects)
            n_missing = len(result.quality["missing_model_items"])
            if n_missing:  # counted as warnings, so that "0 warnings" does not hide them
                tally.counts[f"warning:{MISSING_ITEM_RULE}"] += n_missing
            tally.into(result)
            result.rows_failed = result.rows_rejected
            if job.strict and result.rows_rejected:
                result.rows_loaded = 0
                raise _Abort
            if result.rows_loaded == 0:
                raise _Abort
            result.status = "loaded" if result.rows_rejected == 0 else "partial"
            if spec.supersedes:
                result.superseded = _count_superseded(conn, sub_id)
            _record(conn, job, sub_id, tally, result)
            result.submission_id = sub_id
    except _Abort:
        result.status = "rejected"
        result.submission_id = None
        result.rows_total, result.rows_rejected = tally.rows_total, tally.rows_rejected
        result.rows_loaded = 0
        result.issue_counts = dict(sorted(tally.counts.items()))
        result.issues = tally.stored
        result.firms_new = result.firms_linked = 0
        result.rows_failed = tally.rows_rejected
        if job.strict and tally.rows_rejected:  # --strict refused every row of the file
            result.rows_rejected = tally.rows_total
        result.quality = quality.finish(result.issue_counts, info.read_report())
    finally:
        bar.close()


def _validate_chunk(job: _Load, raw: pd.DataFrame, quality: QualityReport) -> tuple[_Chunk, pd.DataFrame]:
    """Type and validate one chunk: its issues and rejected rows, and its valid typed rows."""
    kind, keys = job.spec.kind, job.spec.file_key
    typed, issues = coerce(kind, raw, job.info.formats, job.profile)
    quality.add(typed)
    issues += job.validator.validate(raw, typed)
    issues += [Issue(r, keys[0], _show_key(raw, r, kind), "file.unique_key", "row",
                     f"key ({', '.join(keys)}) repeats row {f}" if f != r else
                     f"key ({', '.join(keys)}) appears again later in the file")
               for r, f in job.dup_rows.items() if raw.index[0] <= r <= raw.index[-1]]
    bad_rows = {i.row for i in issues if i.severity == "row"}
    good = typed.loc[~typed.index.isin(list(bad_rows))]
    return _Chunk(len(raw), issues, bad_rows), good


def _record(conn, job: _Load, sub_id: int, tally: Tally, result: SubmissionResult) -> None:
    """Store the submission's counts and report, and append its audit event."""
    # the stored report never holds a raw identifier (the result, for the bank's own terminal
    # and local --report file, keeps the values)
    report = {"issue_counts": result.issue_counts, "issues": scrub_issues(job.spec.kind, tally.stored),
              "issues_truncated": sum(tally.counts.values()) > len(tally.stored), "superseded": result.superseded,
              "quality": result.quality}
    conn.execute(Submission.__table__.update().where(Submission.id == sub_id).values(
        status=result.status, rows_total=result.rows_total, rows_loaded=result.rows_loaded,
        rows_rejected=result.rows_rejected, warnings=result.warnings, firms_new=result.firms_new,
        firms_linked=result.firms_linked, report=report))
    audit.append(conn, job.actor, f"submit.{job.spec.kind}",
                 {"submission_id": sub_id, "institution": job.inst.code, "file": job.info.path.name,
                  "rows_loaded": result.rows_loaded, "rows_rejected": result.rows_rejected,
                  "status": result.status},
                 input_hash=job.info.sha256)


def _show_key(raw: pd.DataFrame, row: int, kind: str) -> str:
    return ", ".join(str(raw.at[row, k]) for k in D.FILE_KEYS[kind] if k in raw.columns)


def _count_superseded(conn, sub_id: int) -> int:
    return int(conn.execute(text(
        "SELECT count(*) FROM financial_statement s WHERE s.submission_id = :sid AND EXISTS ("
        " SELECT 1 FROM financial_statement o WHERE o.firm_id = s.firm_id AND o.fiscal_year_end = s.fiscal_year_end"
        " AND o.institution_id = s.institution_id AND o.submission_id < s.submission_id)"
    ), {"sid": sub_id}).scalar_one())


def _pseudonyms(spec: KindSpec, good: pd.DataFrame, inst: InstitutionRef, key: Key) -> dict[str, pd.Series]:
    """Keyed hashes of each valid row (pure computation, no database): ``borrower`` (hash of
    the bank's borrower key), ``corporate`` (pseudonym from the corporate number) and, for
    kinds with a loan key, ``loan`` (hash of the bank's loan key).

    Kinds without a country column read their corporate numbers as numbers of the
    submitting institution's country.
    """
    if good.empty:
        return {}
    country = good["country"] if spec.country_column else pd.Series(inst.country, index=good.index)
    out = {"borrower": anon.borrower_hash(key, inst.code, good["borrower_key"]),
           "corporate": anon.corporate_pseudonym(key, country, good["corporate_number"])}
    if spec.loan_key:
        out["loan"] = anon.loan_hash(key, inst.code, good["loan_key"])
    return out


def _write(conn, spec: KindSpec, good: pd.DataFrame, hashes: dict[str, pd.Series],
           inst: InstitutionRef, sub_id: int) -> _Written:
    """Resolve the firms of one chunk's valid rows (creating new ones if the kind does) and insert the rows.

    ``hashes``: the rows' borrower hashes and corporate pseudonyms (``_pseudonyms``).
    Returns the rows inserted, the rows whose borrower could not be resolved and the ids
    of the firms created / found.
    """
    out = _Written()
    if good.empty:
        return out
    bh, cp = hashes["borrower"], hashes["corporate"]
    firm_id = lookups.firm_ids_by_borrower_hash(conn, inst.id, bh)
    known_before = set(firm_id.dropna().astype("int64"))  # firms stored before this chunk
    missing = firm_id.isna()
    if missing.any():
        pseud = cp.where(cp.notna(), bh)[missing]
        existing = lookups.firms_by_pseudonym(conn, pd.unique(pseud.dropna()))
        known_before |= set(existing.id.astype("int64"))
        if spec.creates_firms:
            created, out.firms_new = _create_firms(conn, good.loc[missing].assign(pseudonym=pseud),
                                                   set(existing.pseudonym))
            if created is not None:
                existing = pd.concat([existing, created], ignore_index=True) if len(existing) else created
        out.firms_seen = np.unique(existing.id.to_numpy(dtype="int64"))
        ids = dict(zip(existing.pseudonym, existing.id, strict=True))
        firm_id[missing] = pseud.map(ids)
        new_links = pd.DataFrame({"institution_id": inst.id, "borrower_hash": bh[missing], "firm_id": firm_id[missing]})
        new_links = new_links.dropna().drop_duplicates("borrower_hash")
        insert_ignore(conn, BorrowerLink.__table__, new_links.astype({"firm_id": "int64"}),
                      ["institution_id", "borrower_hash"])
    if firm_id.isna().any():
        for row in good.index[firm_id.isna().to_numpy()]:
            out.unresolved.append(Issue(
                int(row), "borrower_key", str(good.at[row, "borrower_key"]), "borrower.unknown", "row",
                "borrower is unknown: submit its statements first (or give its corporate_number)"))
        keep = firm_id.notna()
        good, firm_id = good[keep], firm_id[keep]
    if good.empty:
        return out
    base = {"firm_id": firm_id.astype("int64").to_numpy(), "institution_id": inst.id, "submission_id": sub_id}
    loan_hash = hashes["loan"].loc[good.index] if spec.loan_key else None
    if spec.creates_firms and known_before:  # before the insert: the firm's earlier statements only
        out.history = _history(conn, good, firm_id, sorted(int(i) for i in known_before), inst.id)
    insert_frame(conn, spec.table, spec.rows(good, loan_hash, base))
    out.loaded = len(good)
    return out


def _history(conn, good: pd.DataFrame, firm_id: pd.Series, firm_ids: list[int], institution_id: int) -> list[Issue]:
    """Warnings on statements of firms stored before this chunk (``quality_report.history_warnings``),
    compared with this institution's own earlier statements only: a warning never shows an
    attribute or figure another member submitted (issue 17; on PostgreSQL row-level security
    and the column grants on ``firm`` refuse that read anyway)."""
    previous = lookup(conn, FinancialStatement.__table__, "firm_id", firm_ids,
                      ["firm_id", "institution_id", "fiscal_year_end", "sales", "industry", "region"])
    previous = previous[previous["institution_id"] == institution_id]
    firms = (previous.sort_values("fiscal_year_end").drop_duplicates("firm_id", keep="last")
             .rename(columns={"firm_id": "id"})[["id", "industry", "region"]])
    return history_warnings(good, firm_id, anon.region(good.country, good.postal_code), firms,
                            previous[["firm_id", "fiscal_year_end", "sales"]])


def _create_firms(conn, new: pd.DataFrame, known: set[str]) -> tuple[pd.DataFrame | None, np.ndarray]:
    """Create the firms of rows (with a ``pseudonym`` column) whose pseudonym is not ``known``.

    Returns (the created firms' pseudonym and id, or None if none was needed; the ids of
    those this insert really wrote: under concurrent submissions another bank may have
    created some of them first, PostgreSQL; SQLite serialises writers).
    """
    new = new[~new.pseudonym.isin(known)].drop_duplicates("pseudonym")
    if new.empty:
        return None, np.empty(0, dtype="int64")
    new_firms = pd.DataFrame({
        "pseudonym": new.pseudonym.astype(str).to_numpy(),
        "country": new.country.astype(str).to_numpy(),
        **firm_attributes(new),
        "created_at": dt.datetime.now(dt.UTC),
    })
    inserted = insert_ignore(conn, Firm.__table__, new_firms, ["pseudonym"], returning="pseudonym")
    created = lookups.firms_by_pseudonym(conn, new_firms.pseudonym)
    mine = created if inserted is None else created[created.pseudonym.isin(inserted)]
    return created, np.unique(mine.id.to_numpy(dtype="int64"))
