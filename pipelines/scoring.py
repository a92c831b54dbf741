"""Scoring with a registered rating model: firms in the database, a bank's file, lookups.

* :func:`score_firms` scores the latest statement in force of every firm (fiscal year
  end on or before ``as_of``) and writes ``score`` rows (PD, grade, fee category, top-3
  reasons as JSON, model version) plus an audit event. A firm with a default event
  dated after its latest statement's fiscal year end (and on or before ``as_of``) is in
  default: PD 1, the master scale's default grade, reason "in default since ...".
* :func:`score_file` scores a bank's statements file (same columns and typing as a
  statements submission) and returns one row per file row keyed by the bank's own
  ``borrower_key``; nothing is written to the database (not even an audit event, so
  that the bank's file leaves no trace). For growth rates the firm's earlier
  statements in the database are used when the firm is known: matched by the keyed
  hash of the bank's borrower key (this institution's borrower links) or else by the
  corporate-number pseudonym; a file statement replaces a stored one of the same
  fiscal year end.
* :func:`lookup` returns the latest stored score of each of the institution's own
  borrowers, found by the keyed hash of the keys it gives (keys are never stored).

PDs are one-year probabilities of default (fractions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from creditdb import lookups, registry
from creditdb.anonymise import Key
from creditdb.overlap import read_ahead
from creditdb.registry import RegistryError
from creditdb.schema import FinancialStatement, Firm, ModelVersion
from models import reasons as R
from models.calibration import Calibration
from models.master_scale import MasterScale, assign_grade, fee_category, load_master_scale
from models.rating import RatingModel, load_model, spec_from_record
from models.ratios import FEATURE_NAMES
from models.unreported import UnreportedAdjustment

CHUNK = 250_000  # firms per scoring part: the database reads the next part and stores the last while one is scored


@dataclass
class Scorer:
    """A registered model ready to score: LightGBM text + calibration + master scale."""

    id: int
    version: str
    status: str
    model: RatingModel
    calibration: Calibration
    scale: MasterScale
    #: the currency the model takes size features in (recorded at training; None: as submitted)
    size_currency: str | None = None
    #: offsets for optional items left out at random (stored with the model; empty = none)
    unreported: UnreportedAdjustment = field(default_factory=UnreportedAdjustment)

    def raw_scores(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds scores with the unreported-item offsets (``X``: features + raw items or flags)."""
        from pipelines.training import adjusted_scores

        return adjusted_scores(self.model, self.unreported, X)

    def score(self, X: pd.DataFrame, reasons_as_json: bool = False) -> pd.DataFrame:
        """PD, grade, fee category and top-3 reasons per row of features ``X``.

        ``X`` may also hold the raw statement items (or the training table's
        ``unreported:<item>`` flags): an optional item the model treats as missing at
        random is corrected for where the row left it out (``models.unreported``); without
        them an item counts as left out where all its features are NaN.

        ``reasons``: a list of ``{"feature", "text", "contribution"}`` dicts per row, or
        with ``reasons_as_json`` the same list as JSON text (built in bulk; what the
        ``score.reasons`` column stores).
        """
        cols = list(FEATURE_NAMES)
        Xc = X[cols]
        explainer: Any = self.model
        if self.unreported.items and len(Xc):
            from pipelines.model_items import unreported_flags

            explainer = _WithOffsets(self.model, self.unreported, unreported_flags(X))
        if not len(Xc):
            raw = np.array([])
        else:  # the raw score (LightGBM, GIL released) is predicted while TreeSHAP runs; it is also its check
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(self.model.raw_score, Xc)
                if reasons_as_json:
                    reasons = R.explain_json(explainer, Xc, top=3, raw=pending)
                else:
                    reasons = R.reasons_as_lists(R.explain_arrays(explainer, Xc, top=3, raw=pending))
                raw = pending.result()
            if explainer is not self.model:
                raw = raw + explainer.offsets_.sum(axis=1)
        pd_ = self.calibration.predict(raw) if len(Xc) else np.array([])
        grades = assign_grade(pd_, self.scale) if len(Xc) else np.array([], dtype=object)
        out = pd.DataFrame({"pd": pd_, "grade": grades,
                            "fee_category": fee_category(grades, self.scale) if len(Xc) else np.array([], int)},
                           index=X.index)
        if not len(Xc):
            out["reasons"] = np.array([], dtype=object)
            return out
        out["reasons"] = reasons if reasons_as_json else pd.Series(reasons, index=X.index, dtype=object)
        return out


class _WithOffsets:
    """The model as the reason codes see it: Tree SHAP plus the unreported-item offsets.

    Each offset is added to the contribution of the item's first feature
    (``UnreportedAdjustment.feature_offsets``), so a row's contributions sum to its
    corrected score and a corrected missing item is not every firm's top reason.
    """

    def __init__(self, model: RatingModel, unreported: UnreportedAdjustment, flags: pd.DataFrame) -> None:
        self.model, self.unreported, self.flags = model, unreported, flags
        self.feature_names_ = model.feature_names_
        self.monotone_constraints_ = model.monotone_constraints_
        self.offsets_ = np.zeros((0, len(model.feature_names_)))

    def _aligned(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.model._aligned(X)

    def contribution_matrix(self, X: pd.DataFrame, raw: Any = None) -> np.ndarray:
        c = self.model.contribution_matrix(X, raw=raw)  # waits for ``raw`` (a future) and checks against it
        r = raw.result() if hasattr(raw, "result") else (self.model.raw_score(X) if raw is None else raw)
        self.offsets_ = self.unreported.feature_offsets(np.asarray(r), X, self.flags, list(self.feature_names_))
        c[:, :-1] += self.offsets_
        return c


def reasons_json(long: pd.DataFrame, index: pd.Index) -> np.ndarray:
    """JSON text per row of ``index``: the list of its reasons (``long`` as :func:`models.reasons.explain`).

    Equal to ``json.dumps(reasons, ensure_ascii=False)`` of the list of dicts (feature,
    text, contribution rounded to 6 decimals) in rank order, composed in bulk
    (:mod:`models.reason_json`).
    """
    from models.reason_json import item_prefix, json_lists

    long = long.sort_values("rank", kind="stable")
    pos = index.get_indexer(long["row"])
    order = np.argsort(pos, kind="stable")  # by row, then rank
    pos = pos[order]
    slot = np.arange(len(pos)) - np.searchsorted(pos, pos, side="left")
    count = np.bincount(pos, minlength=len(index))
    k = int(count.max()) if len(pos) else 0
    pairs, prefixes = pd.factorize(pd.Series(list(zip(long["feature"].to_numpy()[order],
                                                       long["text"].to_numpy()[order], strict=False)), dtype=object))
    code = np.zeros((len(index), k), dtype=np.int64)
    contribution = np.zeros((len(index), k))
    code[pos, slot] = pairs
    contribution[pos, slot] = long["contribution"].to_numpy(dtype=np.float64)[order]
    out = json_lists(code, [item_prefix(str(f), str(t)) for f, t in prefixes], contribution, count)
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=object) if len(out) else np.array([], dtype=object)


def load_scorer(conn: Connection, version: str | None = None) -> Scorer:
    """The model ``version`` (default: the approved one); retired or unknown models raise."""
    if version is None:
        rec = registry.approved(conn)
        if rec is None:
            raise RegistryError("no approved model: approve one (creditdb model approve) or pass --model VERSION "
                                "(see creditdb model list)")
    else:
        rec = registry.get(conn, version)
    if rec["status"] == "retired":
        raise RegistryError(f"model {rec['version']} is retired and may not score; use the approved model")
    # size features in the currency the model recorded (None: as submitted), whatever today's setting
    trained_in = rec["spec"].get("size_currency")
    # the spec the model was trained with, as stored, not today's packaged file
    model = load_model(rec["artifact"], spec_from_record(rec["spec"]))
    return Scorer(id=int(rec["id"]), version=rec["version"], status=rec["status"], model=model,
                  calibration=Calibration.from_dict(rec["spec"]["calibration"]), scale=load_master_scale(),
                  size_currency=trained_in,
                  unreported=UnreportedAdjustment.from_dict(rec["spec"].get("unreported")))


def _bar(total: int, desc: str, progress: bool | None):
    from tqdm import tqdm

    disable = progress is False or (progress is None and not sys.stderr.isatty())
    return tqdm(total=total, desc=desc, unit="firms", file=sys.stderr, disable=disable, leave=False)


def _score_part(scorer: Scorer, part: pd.DataFrame, default_date: pd.Series, in_default: np.ndarray,
                as_json: bool, now: dt.datetime) -> pd.DataFrame:
    """``score`` rows of one part of the firms: PD (one year), grade, fee category, reasons.

    Firms ``in_default`` (a default event after their latest statement) get PD 1, the
    default grade and the reason "In default since <date>".
    """
    res = scorer.score(part, reasons_as_json=as_json)
    if in_default.any():
        dg = scorer.scale.default
        res.loc[in_default, "pd"] = 1.0
        res.loc[in_default, "grade"] = dg.grade
        res.loc[in_default, "fee_category"] = dg.fee_category
        since = [[{"feature": "default_event", "text": f"In default since {x.date()}", "contribution": None}]
                 for x in default_date[in_default]]
        res.loc[in_default, "reasons"] = pd.Series([json.dumps(r) for r in since] if as_json else since,
                                                   index=res.index[in_default], dtype=object)
    return pd.DataFrame({
        "model_version_id": scorer.id, "firm_id": part["firm_id"].astype("int64").to_numpy(),
        "institution_id": part["institution_id"].astype("int64").to_numpy(),
        "statement_id": part["statement_id"].astype("int64").to_numpy(),
        "pd": res["pd"].astype("float64").to_numpy(), "grade": res["grade"].astype(str).to_numpy(),
        "fee_category": res["fee_category"].astype("int64").to_numpy(),
        "reasons": res["reasons"].reset_index(drop=True), "scored_at": now,  # no per-row copy of the texts
    })


def score_firms(engine: Engine, version: str | None = None, as_of: dt.date | None = None,
                actor: str = "unknown", progress: bool | None = None) -> dict[str, Any]:
    """Score every firm's latest statement in force; write score rows; return a summary."""
    from creditdb import audit
    from pipelines.features import load_defaults
    from pipelines.score_store import ScoreWriter

    as_of = as_of or dt.date.today()
    with engine.connect() as conn:
        scorer = load_scorer(conn, version)
        defaults = load_defaults(conn)
        lo, hi, n_firms = conn.execute(select(func.min(Firm.id), func.max(Firm.id), func.count())).one()
    d = defaults.loc[defaults["default_date"] <= pd.Timestamp(as_of)]
    last_default = d.groupby("firm_id")["default_date"].max()
    # PostgreSQL's COPY takes the reasons as JSON text (composed in bulk); SQLite's JSON
    # column serialises the lists itself
    as_json = engine.dialect.name == "postgresql"
    dg = scorer.scale.default
    now = dt.datetime.now(dt.UTC)
    done: list[pd.DataFrame] = []  # the written rows without their reasons, for the hashes and the summary
    bar = _bar(n_firms, "scoring", progress)
    with engine.begin() as conn:  # the rows and their audit event: one transaction
        with ScoreWriter(conn, scorer.id) as writer:
            # firms in id ranges of about CHUNK: on PostgreSQL the next range is read while this
            # one is scored, and the rows of the last are stored meanwhile (one COPY stream)
            for latest in _latest_by_firm_range(engine, as_of, _firm_ranges(lo, hi, n_firms),
                                                prefetch=engine.dialect.name == "postgresql",
                                                size_currency=scorer.size_currency):
                # reindex, not map: map of an empty Series (no default events stored) fails on datetimes
                dflt_date = pd.Series(last_default.reindex(latest["firm_id"].to_numpy()).to_numpy(),
                                      index=latest.index)
                in_default = (dflt_date.notna() & (dflt_date > latest["fiscal_year_end"])).to_numpy()
                frame = _score_part(scorer, latest, dflt_date, in_default, as_json, now)
                writer.write(frame)
                done.append(frame.drop(columns="reasons").assign(in_default=in_default))
                bar.update(len(frame))
            if not done:  # raised inside the transaction: nothing is written
                raise ValueError(f"no statements with fiscal year end on or before {as_of}: nothing to score")
        frame = pd.concat(done, ignore_index=True)
        n_default = int(frame["in_default"].sum())
        input_hash = hashlib.sha256(scorer.model.model_sha256.encode() + b"|" + as_of.isoformat().encode() + b"|"
                                    + frame["statement_id"].to_numpy(dtype="<i8").tobytes()).hexdigest()
        output_hash = hashlib.sha256(frame["firm_id"].to_numpy(dtype="<i8").tobytes()
                                     + frame["pd"].to_numpy(dtype="<f8").tobytes()
                                     + "|".join(frame["grade"]).encode()).hexdigest()
        n_firms = int(frame["firm_id"].nunique())
        audit.append(conn, actor, "score.firms", {"version": scorer.version, "as_of": as_of.isoformat(),
                                                  "firms": n_firms, "scores": len(frame), "in_default": n_default},
                     input_hash=input_hash, output_hash=output_hash)
    bar.close()
    counts = frame["grade"].value_counts()
    # one score per firm and institution (each from that institution's statements): "scores"
    # counts them, "firms" the distinct firms
    return {"version": scorer.version, "status": scorer.status, "as_of": as_of.isoformat(), "firms": n_firms,
            "scores": len(frame),
            "in_default": n_default, "mean_pd": float(frame["pd"].mean()),
            "grades": {g: int(counts.get(g, 0)) for g in [*scorer.scale.labels, dg.grade]}}


#: scoring key of a (firm, institution) pair: firm_id * UNIT + institution_id (institution ids stay below it)
UNIT = 1_000_000


def _firm_ranges(lo: int | None, hi: int | None, n_firms: int) -> list[tuple[int, int]]:
    """Half-open firm id ranges ``[a, b)`` covering ``lo..hi`` in parts of about :data:`CHUNK` firms."""
    if lo is None or hi is None:
        return []
    parts = max(1, -(-n_firms // CHUNK))
    edges = np.linspace(lo, hi + 1, parts + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=False) if b > a]


def _latest_by_firm_range(engine: Engine, as_of: dt.date, ranges: list[tuple[int, int]],
                          prefetch: bool, size_currency: str | None = None) -> Iterator[pd.DataFrame]:
    """Each range's firms' latest statements with features (:func:`pipelines.features.latest_statements`).

    Size features in ``size_currency`` (the model's; None: as submitted).
    All ranges are read in one transaction (one snapshot; REPEATABLE READ on
    PostgreSQL). With ``prefetch`` a thread reads the next range while the caller
    works on this one (the database and the caller's numpy/LightGBM work overlap);
    without, every range is read before the first is yielded (SQLite: a reader must
    not hold its lock while the caller's transaction writes).
    """
    from pipelines.features import latest_statements, load_scoring_statements

    def read() -> Iterator[pd.DataFrame]:
        options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
        with engine.connect().execution_options(**options) as conn:
            for firms in ranges:
                rows = load_scoring_statements(conn, as_of, firms, size_currency=size_currency)
                # one scoring unit per (firm, institution): each member's history on its own
                real = rows["firm_id"].to_numpy(dtype="int64")
                rows["firm_id"] = real * UNIT + rows["institution_id"].to_numpy(dtype="int64")
                latest = latest_statements(rows, as_of)
                if len(latest):
                    latest["firm_id"] = latest["firm_id"].to_numpy(dtype="int64") // UNIT
                    yield latest

    reader = read()
    if not prefetch:
        yield from list(reader)
        return
    # also when the caller stops early, a read in flight ends and the reader is closed
    yield from read_ahead(reader, thread_name="creditdb-score-reader")


class ScoreFileError(ValueError):
    """The file as a whole cannot be scored (unreadable, missing required columns)."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['file']}: {p.get('column') or ''} {p['message']}".strip() for p in problems))


def _read_statements_file(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, str]]:
    """(raw, typed, row -> problem) of a statements file, validated like a submission."""
    from pipelines import dictionary as D
    from pipelines.readers import FileRejected, inspect_file, iter_chunks
    from pipelines.validate import coerce, get_validator

    try:
        info = inspect_file(path)
        raws, typeds, problems = [], [], {}
        validator = get_validator("statements")
        first = True
        for raw in iter_chunks(info, D.names("statements")):
            if first:
                blocking = validator.check_columns(raw, str(path))
                if blocking:
                    raise ScoreFileError(blocking)
                first = False
            typed, issues = coerce("statements", raw)
            issues += validator.validate(raw, typed)
            for i in sorted(issues, key=lambda i: (i.row, i.column or "")):
                if i.severity == "row" and i.row not in problems:
                    problems[i.row] = f"column '{i.column}' = {i.value!r}: {i.message} [{i.rule}]"
            raws.append(raw)
            typeds.append(typed)
    except FileRejected as exc:
        raise ScoreFileError([exc.as_dict()]) from exc
    if first:
        raise ScoreFileError([{"file": str(path), "row": None, "column": None, "message": "the file has no data rows"}])
    return pd.concat(raws), pd.concat(typeds), problems


def score_file(engine: Engine, path: Path, institution: str, key: Key,
               version: str | None = None) -> tuple[pd.DataFrame, str]:
    """Score a bank's statements file without storing it; returns (results, model version).

    Results: one row per file row: ``row`` (file row number), ``borrower_key``,
    ``fiscal_year_end``, ``pd``, ``grade``, ``fee_category``, ``reason_1..3``,
    ``status`` (``scored`` | ``rejected``), ``message`` and ``history`` (stored
    statements of the firm used for growth). Raises :class:`ScoreFileError` for a
    file that cannot be read and ``LookupError`` for an unknown institution.
    """
    from creditdb import anonymise as anon
    from pipelines.features import feature_frame, load_statements
    from pipelines.model_items import frame_column, optional_model_items

    with engine.connect() as conn:
        inst = lookups.require_institution(conn, institution)
        scorer = load_scorer(conn, version)
        raw, typed, problems = _read_statements_file(Path(path))
        good = typed.loc[~typed.index.isin(list(problems))].copy()
        firm = lookups.firm_ids_by_borrower_key(conn, key, inst, good["borrower_key"])
        cp = anon.corporate_pseudonym(key, good["country"], good["corporate_number"])
        need = firm.isna() & cp.notna()
        if need.any():
            firm[need] = lookups.firm_ids_by_pseudonym(conn, cp[need])
        firm_ids = sorted({int(x) for x in firm.dropna()})
        history = load_statements(conn, size_currency=scorer.size_currency) if firm_ids else pd.DataFrame()
    good["firm_key"] = [f"db:{int(f)}" if pd.notna(f) else f"file:{r}" for r, f in zip(good.index, firm, strict=False)]
    good["established_year"] = pd.to_datetime(good["established"]).dt.year.astype("float64")
    good["fiscal_year_end"] = pd.to_datetime(good["fiscal_year_end"]).astype("datetime64[ns]")
    good["_file_row"] = good.index
    from pipelines.fx import add_size_factor

    with engine.connect() as fx_conn:
        good = add_size_factor(fx_conn, good, scorer.size_currency)
    if firm_ids and not history.empty:
        # only the institution's own statements: another member's figures never reach its score
        history = history.loc[history["firm_id"].isin(firm_ids) & (history["institution_id"] == inst.id)].copy()
        history["firm_key"] = "db:" + history["firm_id"].astype("int64").astype(str)
        history["fiscal_year_end"] = history["fiscal_year_end"].astype("datetime64[ns]")
        history = history.merge(good[["firm_key", "fiscal_year_end"]].drop_duplicates(), how="left",
                                on=["firm_key", "fiscal_year_end"], indicator=True)
        history = history.loc[history["_merge"] == "left_only"].drop(columns="_merge")
        history["_file_row"] = -1
    else:
        history = pd.DataFrame(columns=["firm_key", "fiscal_year_end", "_file_row"])
    amounts = [c.name for c in FinancialStatement.__table__.c
               if c.name in good.columns and c.name not in ("fiscal_year_end", "months")]
    cols = ["firm_key", "fiscal_year_end", "months", *amounts,
            "industry", "established_year", "_file_row", "fx_to_reporting"]
    cols = list(dict.fromkeys(c for c in cols if c in good.columns))
    combined = pd.concat([history.reindex(columns=cols), good[cols]], ignore_index=True)
    combined = combined.rename(columns={"firm_key": "firm_id"}).sort_values(["firm_id", "fiscal_year_end"],
                                                                             kind="stable").reset_index(drop=True)
    for c in combined.columns:
        if c not in ("firm_id", "fiscal_year_end", "industry"):
            combined[c] = pd.to_numeric(combined[c], errors="coerce")
    combined["industry"] = combined["industry"].astype(object)
    feats = feature_frame(combined)
    mine = combined["_file_row"] >= 0
    n_hist = combined.loc[~mine].groupby("firm_id").size()
    items = [c for c in dict.fromkeys(frame_column(i) for i in optional_model_items()) if c in combined.columns]
    X = feats.loc[mine].join(combined.loc[mine, items])  # the raw items say which ones the bank left out
    X.index = combined.loc[mine, "_file_row"].astype(int).to_numpy()
    scored = scorer.score(X)
    out = pd.DataFrame({"row": raw.index.astype(int), "borrower_key": raw["borrower_key"].astype("string").to_numpy(),
                        "fiscal_year_end": raw["fiscal_year_end"].astype("string").to_numpy()}, index=raw.index)
    out["pd"] = scored["pd"].reindex(out.index)
    out["grade"] = scored["grade"].reindex(out.index)
    out["fee_category"] = scored["fee_category"].reindex(out.index).astype("Int64")
    for k in range(3):
        out[f"reason_{k + 1}"] = scored["reasons"].reindex(out.index).map(
            lambda rs, k=k: rs[k]["text"] if isinstance(rs, list) and len(rs) > k else None)
    fk = good["firm_key"].reindex(out.index)
    out["history"] = fk.map(lambda f: int(n_hist.get(f, 0)) if isinstance(f, str) else 0).astype("Int64")
    out["status"] = np.where(out.index.isin(list(problems)), "rejected", "scored")
    out["message"] = out.index.map(lambda r: problems.get(r))
    out["model_version"] = scorer.version
    return out.reset_index(drop=True), scorer.version


def write_results(frame: pd.DataFrame, out: Path) -> None:
    """Write scoring results as CSV (or Parquet for .parquet), neutralising spreadsheet formulas."""
    if out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
        return
    from creditdb.safe_csv import write_safe_csv

    write_safe_csv(frame, out)


def lookup(engine: Engine, institution: str, keys: list[str], key: Key) -> pd.DataFrame:
    """Latest stored score of each of ``institution``'s borrowers given by its own keys.

    Returns one row per distinct key in input order: ``borrower_key``, ``found``, and
    when found ``pd``, ``grade``, ``fee_category``, ``reasons``, ``model_version``,
    ``model_status``, ``fiscal_year_end``, ``scored_at``. The score is the approved
    model's latest for the firm, even when another model scored it later; only a firm the
    approved model has not scored shows another model's latest score, marked by
    ``model_status`` ``retired`` (no longer approved) or ``candidate`` (never approved):
    such a score is not used by guarantees or price books (rescore with ``creditdb score
    firms``). Keys of other institutions' borrowers are not found (the hash is scoped to
    the institution).
    """
    from creditdb import anonymise as anon
    from creditdb.bulk import lookup as bulk_lookup

    keys = list(dict.fromkeys(str(k) for k in keys))
    with engine.connect() as conn:
        inst = lookups.require_institution(conn, institution)
        hashes = anon.borrower_hash(key, institution, pd.Series(keys, dtype=object))
        firm_ids_of = lookups.firm_ids_by_borrower_hash(conn, inst.id, hashes)
        firm_of = {h: f for h, f in zip(hashes, firm_ids_of, strict=True) if pd.notna(f)}
        firm_ids = sorted({int(v) for v in firm_of.values()})
        # only the bank's own scores: computed from the statements it submitted (issue 17)
        extra = ("reasons", "model_version_id", "statement_id")
        latest = lookups.latest_scores(conn, None, firm_ids, extra=extra, institution_id=inst.id)
        approved = lookups.approved_model(conn)
        if approved is not None and not latest.empty:
            # the approved model's latest score wins, even when a candidate or retired model
            # scored the firm later; other models' scores only where it has none (marked)
            of_approved = lookups.latest_scores(conn, int(approved.id), firm_ids, extra=extra,
                                                institution_id=inst.id)
            rest = latest.loc[~latest.firm_id.isin(of_approved.firm_id)]
            latest = pd.concat([of_approved, rest], ignore_index=True) if len(of_approved) else rest
        versions = bulk_lookup(conn, ModelVersion.__table__, "id", sorted({int(v) for v in latest.model_version_id}),
                               ["id", "version", "status"])
        # a score written before migration 0012 (no institution) may rest on a statement the
        # bank cannot see: its date is then None
        statements = bulk_lookup(conn, FinancialStatement.__table__, "id",
                                 sorted({int(v) for v in latest.statement_id}), ["id", "fiscal_year_end"])
    latest["model_version"] = latest.model_version_id.map(dict(zip(versions.id, versions.version, strict=True)))
    latest["model_status"] = latest.model_version_id.map(dict(zip(versions.id, versions.status, strict=True)))
    latest["fiscal_year_end"] = latest.statement_id.map(
        dict(zip(statements.id, statements.fiscal_year_end, strict=True)))
    latest = latest.set_index("firm_id")
    out = []
    for k, h in zip(keys, hashes, strict=False):
        f = firm_of.get(h)
        if f is None or int(f) not in latest.index:
            out.append({"borrower_key": k, "found": False})
            continue
        s = latest.loc[int(f)]
        reasons = s["reasons"] if not isinstance(s["reasons"], str) else json.loads(s["reasons"])
        out.append({"borrower_key": k, "found": True, "pd": float(s["pd"]), "grade": s["grade"],
                    "fee_category": int(s["fee_category"]), "reasons": reasons,
                    "model_version": s["model_version"], "model_status": s["model_status"],
                    "fiscal_year_end": None if pd.isna(s["fiscal_year_end"]) else str(s["fiscal_year_end"]),
                    "scored_at": str(s["scored_at"])})
    return pd.DataFrame(out, columns=["borrower_key", "found", "pd", "grade", "fee_category", "reasons",
                                      "model_version", "model_status", "fiscal_year_end", "scored_at"])
