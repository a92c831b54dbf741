"""The data-quality report returned after every submission, as the CRD returns one to its members.

Per column: the fill rate (share of the file's data rows with a value). For statements:
which optional items the rating model uses are missing, in how many rows, which model
inputs they feed and what their absence does to ratings. Plausibility findings (warnings:
an interest rate that looks like a percentage, sales a hundred times the firm's previous
statement, an industry or region that differs from the firm's stored one) are counted by
rule. The report holds counts, rates, column names and rules only: no value from the
file, so no raw identifier.

Firm-history checks against stored statements (:func:`history_warnings`) need the
database; the rest is pure computation on typed chunks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import dictionary as D
from pipelines.model_items import model_inputs
from pipelines.validate import Issue

#: warning rule of an optional model item a submission leaves out (one per item)
MISSING_ITEM_RULE = "quality.missing_model_item"
#: a statement's sales this many times the previous statement's (or its inverse) look like a unit error
UNIT_JUMP = 100.0


class QualityReport:
    """Accumulates fill counts over the typed chunks of one submission."""

    def __init__(self, kind: str, file_columns: list[str]) -> None:
        self.kind = kind
        self.file_columns = set(file_columns)
        self.columns = [c.name for c in D.COLUMNS[kind] if c.type != "pii"]
        self.rows = 0
        self.filled = dict.fromkeys(self.columns, 0)

    def add(self, typed: pd.DataFrame) -> None:
        """Count the values present in one typed chunk (every data row of the file, rejected or not)."""
        self.rows += len(typed)
        counts = typed[self.columns].notna().sum()
        for c in self.columns:
            self.filled[c] += int(counts[c])

    def finish(self, issue_counts: dict[str, int], read: dict | None = None,
               model_effects: dict | None = None) -> dict:
        """The report: ``rows``, ``fill_rate``, ``missing_model_items``, ``plausibility``, ``read``.

        ``model_effects`` (:func:`model_effects`): what the approved model recorded for each
        optional item removed at random; each missing item then says what it costs. Every
        missing model item is a warning ``quality.missing_model_item`` (one per item).
        """
        rate = {c: (round(self.filled[c] / self.rows, 4) if self.rows else None) for c in self.columns}
        required = set(D.required(self.kind))
        missing = []
        if self.kind == "statements":
            for col, features in model_inputs().items():
                if col in required or col not in rate or not self.rows or self.filled[col] == self.rows:
                    continue
                n = self.rows - self.filled[col]
                where = "the file has no such column" if col not in self.file_columns else f"empty in {n} rows"
                recorded = ((model_effects or {}).get("items") or {}).get(col)
                missing.append({
                    "column": col, "rows_missing": n, "fill_rate": rate[col], "model_inputs": features,
                    "rule": MISSING_ITEM_RULE, "severity": "warning",
                    "effect": (f"{col} ({where}) feeds the rating model's {_list(features)}: for these "
                               f"{n} statements {'that input is' if len(features) == 1 else 'those inputs are'} "
                               "unknown. " + _cost(col, recorded, (model_effects or {}).get("version"))),
                    "approved_model": ({"version": model_effects.get("version"), **recorded}
                                       if recorded and model_effects else None),
                })
        plausibility = {k.split(":", 1)[1]: v for k, v in issue_counts.items()
                        if k.startswith(("warning:plausible.", "warning:history."))}
        return {"rows": self.rows, "fill_rate": rate, "missing_model_items": missing,
                "plausibility": plausibility, "read": read or {}}


def _cost(col: str, recorded: dict | None, version: str | None) -> str:
    """What leaving ``col`` out costs, from the approved model's record (``metrics["missing_items"]``)."""
    if not recorded:
        return (f"No approved model has measured what {col} costs yet; the firm's PD is less precise without it: "
                "submit it where the bank has it")
    removal = recorded.get("removed_at_random") or {}
    measured = ""
    if removal.get("mean_pd_shift") is not None:
        measured = (f"Measured on the approved model {version}: removed at random from "
                    f"{removal.get('share_removed', 0.3):.0%} of its out-of-time statements, {col} moved their mean "
                    f"PD by {removal['mean_pd_shift']:+.1%} and changed the grade of "
                    f"{removal.get('grade_changed_share', 0):.0%} of those firms. ")
    if recorded.get("predictive"):
        return (measured + f"In the pool, statements without {col} default more often "
                f"({recorded.get('default_rate_missing', 0):.2%} against {recorded.get('default_rate_reported', 0):.2%},"
                f" Fisher p = {recorded.get('p_value', 0):.2g}): the model treats its absence as a risk signal, so "
                "these firms' PDs are higher than with the item; submit it where the bank has it")
    return (measured + "Its absence carries no evidence of default in the pool, so the model corrects for it and "
            "the PD does not move one way, but single firms can rate better or worse than with the item: submit "
            "it where the bank has it")


def model_effects(conn) -> dict | None:
    """``{"version", "items": {item: metrics["missing_items"][item]}}`` of the approved model, or None."""
    from creditdb.lookups import approved_model

    row = approved_model(conn)
    if row is None:
        return None
    items = (row.metrics or {}).get("missing_items") or {}
    return {"version": row.version, "items": items}


def _list(items: list[str]) -> str:
    items = [f"'{i}'" for i in items]
    if len(items) == 1:
        return f"input {items[0]}"
    return "inputs " + ", ".join(items[:-1]) + " and " + items[-1]


def history_warnings(good: pd.DataFrame, firm_id: pd.Series, regions: pd.Series, stored_firms: pd.DataFrame,
                     previous: pd.DataFrame) -> list[Issue]:
    """Warnings for statements of firms already stored (pure: the caller reads the database).

    ``good``: a chunk's valid statement rows (index = file row); ``firm_id`` and ``regions``
    aligned with it; ``stored_firms``: columns id, industry, region of the firms already
    known before this chunk; ``previous``: their stored statements (firm_id,
    fiscal_year_end, sales).
    """
    issues: list[Issue] = []
    if good.empty or stored_firms.empty:
        return issues
    fid = firm_id.astype("int64")
    firms = stored_firms.set_index("id")
    known = fid.isin(firms.index).to_numpy()
    if not known.any():
        return issues
    rows = good.index[known]
    kf = fid[known]
    for col, ours in (("industry", good.industry[known].astype("string")), ("region", regions[known].astype("string"))):
        theirs = pd.Series(firms[col].reindex(kf.to_numpy()).to_numpy(), index=rows).astype("string")
        differ = (ours.notna() & theirs.notna() & (ours != theirs)).fillna(False).to_numpy()
        for row, o, t in zip(rows[differ], ours[differ], theirs[differ], strict=True):
            issues.append(Issue(int(row), col, str(o), f"history.{col}", "warning",
                                f"'{col}' {o} differs from the firm's stored {col} {t}: recorded on this "
                                "statement as the firm's history (the earlier statements keep theirs)"))
    if not previous.empty:
        prev = previous.dropna(subset=["sales"]).sort_values("fiscal_year_end")
        cur = pd.DataFrame({"row": rows, "firm_id": kf.to_numpy(),
                            "fiscal_year_end": good.fiscal_year_end[known].to_numpy(dtype="datetime64[s]"),
                            "sales": good.sales[known].to_numpy(dtype="float64")}).sort_values("fiscal_year_end")
        prev = prev.assign(fiscal_year_end=pd.to_datetime(prev.fiscal_year_end).astype("datetime64[s]"),
                           firm_id=prev.firm_id.astype("int64"))
        cur = cur.dropna(subset=["fiscal_year_end"])
        joined = pd.merge_asof(cur, prev.rename(columns={"sales": "prev_sales", "fiscal_year_end": "prev_fye"}),
                               left_on="fiscal_year_end", right_on="prev_fye", by="firm_id",
                               allow_exact_matches=False, direction="backward")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = joined.sales.abs() / joined.prev_sales.abs()
        jump = (((ratio >= UNIT_JUMP) | (ratio <= 1 / UNIT_JUMP))
                & (joined.prev_sales.abs() > 0) & (joined.sales.abs() > 0))
        for _, r in joined[jump.fillna(False)].iterrows():
            times = r.sales / r.prev_sales
            issues.append(Issue(int(r.row), "sales", None, "plausible.unit_jump", "warning",
                                f"'sales' is {abs(times):,.4g} times the firm's previous statement "
                                f"({pd.Timestamp(r.prev_fye).date()}): amounts in other units (thousands, "
                                "millions)?"))
    return sorted(issues, key=lambda i: (i.row, i.column or ""))
