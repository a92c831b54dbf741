"""Validation of submission files: typing, then Great Expectations suites.

Each expectation in ``expectations/<kind>.json`` carries ``meta.severity``:

* ``blocking`` - the whole file is rejected (missing required column, no rows);
* ``row`` - the offending rows are rejected and the rest is loaded (unless ``--strict``);
* ``warning`` - the row is loaded and the finding recorded with the submission.

Before the suite runs, every value is typed by the data dictionary (rules
``type.number``, ``type.integer``, ``type.date``, ``type.bool``) and the derived columns
used by the accounting-identity expectations (names starting with ``_``) are added.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from pipelines import dictionary as D
from pipelines.column_mapping import SourceProfile, normalise
from pipelines.local_formats import LocalFormats, missing_mask, parse_dates, parse_numbers

SEVERITIES = ("blocking", "row", "warning")

#: derived column -> (columns shown in the report, formula)
DERIVED: dict[str, tuple[tuple[str, ...], str]] = {
    "_balance_gap": (("total_assets", "total_liabilities", "net_assets"),
                     "|total_assets - (total_liabilities + net_assets)| / total_assets"),
    "_current_assets_excess": (("current_assets", "total_assets"),
                               "(current_assets - total_assets) / total_assets"),
    "_current_liabilities_excess": (("current_liabilities", "total_liabilities"),
                                    "(current_liabilities - total_liabilities) / max(total_liabilities, 1)"),
    "_liquid_assets_excess": (("cash", "receivables", "inventory", "current_assets"),
                              "(cash + receivables + inventory - current_assets) / max(current_assets, 1)"),
    "_interest_bearing_debt_excess": (("interest_bearing_debt", "total_liabilities"),
                                      "(interest_bearing_debt - total_liabilities) / max(total_liabilities, 1)"),
    "_interest_rate_implied": (("interest_expense", "interest_bearing_debt"),
                               "interest_expense / interest_bearing_debt (when debt > 0)"),
}

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_UPPER_CODES = {"country", "currency", "industry"}


@dataclass
class Issue:
    """One finding: file row number (CSV header = row 1), column, submitted value, rule."""

    row: int
    column: str | None
    value: str | None
    rule: str
    severity: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_suite(kind: str) -> dict[str, Any]:
    """The expectation suite of a submission kind, as stored JSON."""
    text = resources.files("expectations").joinpath(f"{kind}.json").read_text(encoding="utf-8")
    return json.loads(text)


def _text(series: pd.Series) -> pd.Series:
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def coerce(kind: str, raw: pd.DataFrame, formats: LocalFormats | None = None,
           profile: SourceProfile | None = None) -> tuple[pd.DataFrame, list[Issue]]:
    """Type the columns of ``raw`` by the data dictionary; report values that do not parse.

    ``formats``: how the file writes numbers and dates (default: decimal point, the
    unambiguous local forms); ``profile``: the bank's codes (``[values.COLUMN]``).
    Returns the typed frame (all dictionary columns present, missing ones as NA) and the
    type issues. Unknown columns are dropped.
    """
    formats = formats or LocalFormats()
    value_maps = profile.values if profile is not None else {}
    issues: list[Issue] = []
    notes: dict[tuple[int, str], str] = {}  # (row, column) -> why the local reader refused it
    typed: dict[str, pd.Series] = {}
    n = len(raw)
    for col in D.COLUMNS[kind]:
        if col.name not in raw.columns:
            if col.type in ("amount", "rate", "int"):
                typed[col.name] = pd.Series(np.nan, index=raw.index, dtype="float64")
            elif col.type == "date":
                typed[col.name] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[s]")
            else:
                typed[col.name] = pd.Series(pd.NA, index=raw.index, dtype="string")
            continue
        src = raw[col.name]
        if col.type in ("amount", "rate", "int"):
            if pd.api.types.is_numeric_dtype(src) and not pd.api.types.is_bool_dtype(src):
                values = src.astype("float64")
                bad = pd.Series(False, index=raw.index)
            else:
                values = _fast_float(src) if formats.decimal == "." else None
                if values is not None:  # every value parsed: the common, clean case
                    bad = pd.Series(False, index=raw.index)
                else:
                    text = _text(src)
                    if formats.decimal == ".":
                        values = pd.to_numeric(text, errors="coerce").astype("float64")
                        bad = text.notna() & values.isna()
                    else:  # '1.234' is 1234 here: every value goes through the local reader
                        values = pd.Series(np.nan, index=raw.index, dtype="float64")
                        bad = text.notna()
                    if bool(bad.any()):  # local forms: 1,234.5  (600)  ¥2,100,000  n/a
                        local, why = parse_numbers(text[bad], formats)
                        values = values.copy()
                        values[bad] = local
                        notes.update({(r, col.name): m for r, m in why.dropna().items()})
                        bad = pd.Series(raw.index.isin(why.dropna().index), index=raw.index)
            rule, what = "type.number", "a number"
            if col.type == "int":
                frac = values.notna() & (values != np.floor(values.fillna(0)))
                bad = bad | frac
                values = values.mask(frac)
                rule, what = "type.integer", "a whole number"
            finite = np.isfinite(values.fillna(0).to_numpy())
            if not finite.all():
                bad = bad | pd.Series(~finite, index=raw.index)
                values = values.where(finite)
            typed[col.name] = values
        elif col.type == "date":
            if pd.api.types.is_datetime64_any_dtype(src):
                values = src.astype("datetime64[s]")
                bad = pd.Series(False, index=raw.index)
            else:
                text = _text(src)
                values = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")
                bad = text.notna() & values.isna()
                if bool(bad.any()):  # 31/03/2023, 2024/03/31, 20240331, 45016, 2023-03-31 00:00:00, n/a
                    local, why = parse_dates(text[bad], formats)
                    values = values.copy()
                    values[bad] = local
                    notes.update({(r, col.name): m for r, m in why.dropna().items()})
                    bad = pd.Series(raw.index.isin(why.dropna().index), index=raw.index)
            rule, what = "type.date", "a date in the form YYYY-MM-DD"
            typed[col.name] = values
        elif col.type == "bool":
            if pd.api.types.is_bool_dtype(src):
                values = src.astype("boolean")
                bad = pd.Series(False, index=raw.index)
            else:
                text = _text(src).str.lower()
                text = text.mask(missing_mask(text, formats))
                values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
                values[text.isin(_TRUE).fillna(False).to_numpy()] = True
                values[text.isin(_FALSE).fillna(False).to_numpy()] = False
                bad = text.notna() & values.isna()
            rule, what = "type.bool", "true or false"
            typed[col.name] = values
        else:
            values = _text(src)
            if col.type != "key":
                values = values.mask(missing_mask(values, formats))
            codes = value_maps.get(normalise(col.name))
            if codes:  # the bank's own codes: exact first, then ignoring case
                folded = {k.casefold(): v for k, v in codes.items()}
                mapped = values.map(lambda v, c=codes, f=folded: c.get(v, f.get(v.casefold())) if isinstance(v, str)
                                    else None)
                values = mapped.astype("string").fillna(values)
            if col.name in _UPPER_CODES:
                values = values.str.upper()
            elif col.type == "code":
                values = values.str.lower()
            typed[col.name] = values
            continue
        if bool(bad.any()):
            for row in raw.index[bad.to_numpy()]:
                why = notes.get((row, col.name))
                if why is None:
                    message = f"'{col.name}' must be {what}"
                elif why.startswith("'"):  # the date reader names the value itself
                    message = f"'{col.name}': {why}"
                else:
                    message = f"'{col.name}' {why}"
                issues.append(Issue(int(row), col.name, _show(raw.at[row, col.name]), rule, "row", message))
    frame = pd.DataFrame(typed, index=raw.index)
    assert len(frame) == n
    frame.attrs["type_issues"] = {(i.row, i.column) for i in issues}
    if kind == "statements":
        _add_derived(frame)
    return frame, issues


def _fast_float(src: pd.Series) -> pd.Series | None:
    """Parse a text column with Arrow's C++ cast; None when any value does not parse."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = src.array._pa_array if hasattr(src.array, "_pa_array") else pa.array(src.astype(object))
        floats = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return pd.Series(floats.to_numpy(zero_copy_only=False), index=src.index, dtype="float64")


def _add_derived(f: pd.DataFrame) -> None:
    ta = f["total_assets"]
    tl = f["total_liabilities"]
    ca = f["current_assets"]
    with np.errstate(divide="ignore", invalid="ignore"):
        f["_balance_gap"] = ((ta - (tl + f["net_assets"])).abs() / ta.where(ta > 0)).astype("float64")
        f["_current_assets_excess"] = ((ca - ta) / ta.where(ta > 0)).astype("float64")
        f["_current_liabilities_excess"] = ((f["current_liabilities"] - tl) / tl.clip(lower=1)).astype("float64")
        liquid = f[["cash", "receivables", "inventory"]].sum(axis=1, min_count=1)
        f["_liquid_assets_excess"] = ((liquid - ca) / ca.clip(lower=1)).astype("float64")
        f["_interest_bearing_debt_excess"] = ((f["interest_bearing_debt"] - tl) / tl.clip(lower=1)).astype("float64")
        ibd = f["interest_bearing_debt"]
        f["_interest_rate_implied"] = (f["interest_expense"] / ibd.where(ibd > 0)).astype("float64")


def _show(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


@lru_cache(maxsize=8)
def get_validator(kind: str, today: dt.date | None = None) -> Validator:
    """A cached validator: building the Great Expectations context costs about a second."""
    return Validator(kind, today=today)


class Validator:
    """Runs one kind's expectation suite on typed chunks with Great Expectations."""

    def __init__(self, kind: str, today: dt.date | None = None) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        import great_expectations as gx
        from great_expectations.core.expectation_suite import ExpectationSuite
        from great_expectations.execution_engine import pandas_execution_engine

        # GE fingerprints every in-memory batch under 1 GB by hashing all its values (about
        # a second per 200,000 rows); the fingerprint is only a batch marker, never read here.
        if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
            pandas_execution_engine.HASH_THRESHOLD = 0

        self.kind = kind
        self.today = pd.Timestamp(today or dt.date.today())
        stored = load_suite(kind)
        self._context = gx.get_context(mode="ephemeral")
        try:
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        except Exception:  # pragma: no cover - older/newer GE without this knob
            pass
        date_cols = set(D.of_type(kind, "date"))
        by_severity: dict[str, list[dict]] = {s: [] for s in SEVERITIES}
        for exp in stored["expectations"]:
            exp = json.loads(json.dumps(exp))
            kwargs = exp["kwargs"]
            cols = {kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")}
            if cols & date_cols:
                for key in ("min_value", "max_value"):
                    if isinstance(kwargs.get(key), str):
                        kwargs[key] = pd.Timestamp(kwargs[key])
            by_severity[exp["meta"]["severity"]].append(exp)
        self.expectations = by_severity
        self._checks = by_severity["row"] + by_severity["warning"]
        for i, exp in enumerate(self._checks):
            exp["meta"]["check"] = i  # results come back in GE's order, not the suite's
        self._screens = _screens(self._checks)
        screened = {i for members in self._screens.values() for i in members}
        first_pass = [exp for i, exp in enumerate(self._checks) if i not in screened]
        first_pass += [_screen_expectation(col, self._checks[members[0]]) for col, members in self._screens.items()]
        # one run for row and warning rules: each Great Expectations run has a fixed cost
        self._suites = {
            "blocking": ExpectationSuite(name=f"{stored['name']}_blocking", expectations=by_severity["blocking"]),
            "checks": ExpectationSuite(name=f"{stored['name']}_checks", expectations=first_pass),
        }
        self._detail_suites: dict[tuple[int, ...], ExpectationSuite] = {}
        #: columns the row and warning rules read: the only ones handed to Great Expectations
        self._check_columns = _columns_of(self._checks)
        #: columns the first pass reads (screen columns are made from the typed chunk)
        self._first_columns = [c for c in _columns_of(first_pass) if c not in self._screens]
        source = self._context.data_sources.add_pandas(f"creditdb_{kind}")
        self._batch_definition = source.add_dataframe_asset("submission").add_batch_definition_whole_dataframe("chunk")

    def _run(self, suite, frame: pd.DataFrame, result_format: dict[str, Any]):
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(suite, result_format=result_format, expectation_parameters={"today": self.today})

    def _detail_suite(self, failed: tuple[int, ...]):
        """The sub-suite of the row/warning rules ``failed`` (positions in ``self._checks``)."""
        from great_expectations.core.expectation_suite import ExpectationSuite

        suite = self._detail_suites.get(failed)
        if suite is None:
            suite = ExpectationSuite(name=f"{self._suites['checks'].name}_detail_{len(self._detail_suites)}",
                                     expectations=[copy.deepcopy(self._checks[i]) for i in failed])
            if len(self._detail_suites) < 256:
                self._detail_suites[failed] = suite
        return suite

    def check_columns(self, raw: pd.DataFrame, file: str) -> list[dict[str, Any]]:
        """Blocking expectations on the first chunk; returns blocking problems (empty if none)."""
        problems = []
        result = self._run(self._suites["blocking"], raw, _BOOLEAN_ONLY)
        for r in result.results:
            if not r.success:
                meta = r.expectation_config.meta
                problems.append({"file": file, "row": 1, "column": r.expectation_config.kwargs.get("column"),
                                 "rule": meta["rule"], "severity": "blocking", "message": meta["message"]})
        return problems

    def validate(self, raw: pd.DataFrame, typed: pd.DataFrame) -> list[Issue]:
        """Row and warning expectations on a typed chunk; issues refer to file rows.

        Two Great Expectations runs: the whole suite with ``BOOLEAN_ONLY`` results (no
        unexpected lists, so no copies of the failing rows), groups of same-bound range
        rules standing as one screen rule each (:func:`_screens`); then, only if some
        rules failed, those rules (a failed screen: all of its group) again with
        ``COMPLETE`` results for the failing row numbers.
        """
        issues: list[Issue] = []
        typed_bad = typed.attrs.get("type_issues", set())
        summary = self._run(self._suites["checks"], self._frame(typed, self._first_columns, screens=True),
                            _BOOLEAN_ONLY)
        failed: list[int] = []
        for r in summary.results:
            _raise_if_broken(r)
            if not r.success:
                meta = r.expectation_config.meta
                failed.extend(self._screens[meta["screen"]] if "screen" in meta else [meta["check"]])
        if not failed:
            return issues
        failed = sorted(set(failed))
        result = self._run(self._detail_suite(tuple(failed)),
                           self._frame(typed, _columns_of([self._checks[i] for i in failed])), _COMPLETE)
        for r in result.results:
            if r.success:
                continue
            _raise_if_broken(r)
            cfg = r.expectation_config
            meta = cfg.meta
            column = cfg.kwargs.get("column") or cfg.kwargs.get("column_A")
            for row in r.result.get("unexpected_index_list") or []:
                row = int(row if not isinstance(row, dict) else row["row"])
                if meta["rule"] == "value.required" and (row, column) in typed_bad:
                    continue  # already reported as a value that does not parse
                issues.append(Issue(row, *self._where(raw, typed, row, column, cfg.kwargs),
                                    meta["rule"], meta["severity"], meta["message"]))
        return issues

    def _frame(self, typed: pd.DataFrame, columns: list[str], screens: bool = False) -> pd.DataFrame:
        """The ``columns`` (and with ``screens`` the screen columns) the rules read, text as NumPy objects.

        Great Expectations drops the rows with a missing value before each column rule
        whose column has one, which copies the whole frame once per such rule: a narrow
        frame of NumPy arrays keeps that cheap (taking rows from Arrow-backed text columns
        costs about ten times more), and each pass gets only the columns its rules read.
        """
        cols = {}
        if screens:
            for screen, members in self._screens.items():
                cols[screen] = _row_extreme(typed, [self._checks[i]["kwargs"]["column"] for i in members],
                                            screen.endswith("_min"))
        for c in columns:
            if c not in typed.columns:
                continue
            s = typed[c]
            if isinstance(s.dtype, pd.StringDtype):
                s = s.astype(object).where(s.notna(), None)
            elif (pd.api.types.is_datetime64_dtype(s.dtype) and s.dtype != "datetime64[ns]"
                  and not ((s < _NS_MIN) | (s > _NS_MAX)).any()):
                # GE compares only nanosecond datetimes vectorised (others value by value);
                # a column with a date outside their range (1678-2261) stays as it is
                s = s.astype("datetime64[ns]")
            cols[c] = s
        return pd.DataFrame(cols, index=typed.index)

    def _where(self, raw: pd.DataFrame, typed: pd.DataFrame, row: int, column: str | None,
               kwargs: dict) -> tuple[str | None, str | None]:
        if column in DERIVED:
            shown = DERIVED[column][0]
            value = ", ".join(f"{c}={_show(typed.at[row, c])}" for c in shown)
            return shown[0], value
        if "column_B" in kwargs:
            a, b = kwargs["column_A"], kwargs["column_B"]
            return a, f"{a}={_show(_raw_or_typed(raw, typed, row, a))}, {b}={_show(_raw_or_typed(raw, typed, row, b))}"
        return column, _show(_raw_or_typed(raw, typed, row, column))


def _columns_of(expectations: list[dict]) -> list[str]:
    """The columns ``expectations`` read, in order of first use."""
    return list(dict.fromkeys(
        c for exp in expectations
        for c in (exp["kwargs"].get("column"), exp["kwargs"].get("column_A"), exp["kwargs"].get("column_B"))
        if c is not None))


#: bounds a screen may stand for: the same rule with the same numeric bounds on several columns
_SCREEN_BOUNDS = ("min_value", "max_value", "strict_min", "strict_max")


def _screens(checks: list[dict]) -> dict[str, list[int]]:
    """Groups of one-sided range rules that one Great Expectations rule on a derived column can stand for.

    ``{screen column: positions in checks}``. The suite has, for instance, the same
    ``amount.absurd`` rule on seventeen amount columns; every Great Expectations rule
    costs about 5 ms of fixed overhead a run, whatever the rows. A row breaks one of
    ``v >= m`` over columns ``c1..cn`` exactly when the smallest of its non-missing
    values breaks it (and ``v <= M`` when the largest does); a row with all values
    missing passes both ways, as each rule skips missing values. So the first pass
    checks the row-wise minimum (or maximum) against the bound, and only when that
    fails are the group's own rules run, to name the columns and rows
    (``tests/test_validate_screens.py`` checks the equivalence).
    """
    groups: dict[tuple, list[int]] = {}
    for i, exp in enumerate(checks):
        kw = exp["kwargs"]
        if exp["type"] != "expect_column_values_to_be_between" or set(kw) - {"column", *_SCREEN_BOUNDS}:
            continue
        low, high = kw.get("min_value"), kw.get("max_value")
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (low, high)):
            continue  # dates and parameters ($PARAMETER today) stay single rules
        if str(kw["column"]).startswith("_"):
            continue
        key = (exp["meta"]["rule"], exp["meta"]["severity"], *(kw.get(k) for k in _SCREEN_BOUNDS))
        groups.setdefault(key, []).append(i)
    out: dict[str, list[int]] = {}
    for n, members in enumerate(m for m in groups.values() if len(m) > 1):
        kw = checks[members[0]]["kwargs"]
        for side in ("min", "max"):
            if kw.get(f"{side}_value") is not None:
                out[f"_screen_{n}_{side}"] = members
    return out


def _screen_expectation(column: str, like: dict) -> dict:
    """The first-pass rule on a screen column: the bound of ``like`` on that column's side."""
    side = column.rsplit("_", 1)[1]
    kwargs = {"column": column, f"{side}_value": like["kwargs"][f"{side}_value"]}
    if like["kwargs"].get(f"strict_{side}"):
        kwargs[f"strict_{side}"] = True
    return {"type": like["type"], "kwargs": kwargs,
            "meta": {"severity": like["meta"]["severity"], "rule": like["meta"]["rule"], "screen": column}}


def _row_extreme(typed: pd.DataFrame, columns: list[str], lowest: bool) -> pd.Series:
    """Row-wise minimum (or maximum) of ``columns`` ignoring missing values; NaN where all are missing."""
    values = []
    for c in columns:
        if c not in typed.columns:
            continue
        try:
            values.append(typed[c].to_numpy(dtype="float64", na_value=np.nan))
        except (TypeError, ValueError) as exc:  # as Great Expectations would: the rule cannot run
            raise RuntimeError(f"expectation expect_column_values_to_be_between on {c} failed to run: {exc}") from None
    if not values:
        return pd.Series(np.nan, index=typed.index, dtype="float64")
    reduce = np.fmin if lowest else np.fmax  # fmin/fmax skip NaN unless both are NaN
    return pd.Series(reduce.reduce(values), index=typed.index, dtype="float64")


_NS_MIN, _NS_MAX = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")
_BOOLEAN_ONLY = {"result_format": "BOOLEAN_ONLY"}
_COMPLETE = {"result_format": "COMPLETE", "partial_unexpected_count": 0, "return_unexpected_index_query": False}


def _raise_if_broken(r) -> None:
    """Raise when a rule could not be evaluated (GE reports that as an unsuccessful result).

    ``exception_info`` is either one {raised_exception, exception_message} dict or, when a
    metric failed, a dict of such dicts keyed by metric.
    """
    info = r.exception_info or {}
    found = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for item in found:
        if item.get("raised_exception"):
            raise RuntimeError(f"expectation {r.expectation_config.type} on "
                               f"{r.expectation_config.kwargs.get('column')} failed to run: "
                               f"{item.get('exception_message')}")


def _raw_or_typed(raw: pd.DataFrame, typed: pd.DataFrame, row: int, column: str | None) -> Any:
    if column is None:
        return None
    if column in raw.columns:
        return raw.at[row, column]
    return typed.at[row, column] if column in typed.columns else None
