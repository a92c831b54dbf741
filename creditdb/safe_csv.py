"""CSV for spreadsheets: text that a spreadsheet would run as a formula is neutralised.

Used by every CSV export (the CLI's and the pipelines'); imports neither click nor the
database.
"""

from __future__ import annotations

from typing import Any


def neutralise_formula(value: Any) -> Any:
    """Neutralise spreadsheet formulas in exported text (OWASP CSV injection): prefix a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def neutralise_frame(frame):
    """Copy of a DataFrame for CSV export: every text value passed through ``neutralise_formula``.

    Numeric, boolean and date columns are left as they are (a negative number is not a formula).
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
                or isinstance(s.dtype, pd.CategoricalDtype)):
            out[col] = s.astype(object).map(neutralise_formula)
    return out


def write_safe_csv(frame, path) -> None:
    """Write a DataFrame as CSV for spreadsheets: formulas neutralised, CRLF line ends.

    With CRLF as the line terminator the writer quotes every value containing a CR or LF;
    with pandas' default (LF) a bare CR stays unquoted, and a spreadsheet starts a new row
    there - so ``"x\r=cmd"`` would smuggle the formula ``=cmd`` into a cell of its own.
    """
    out = neutralise_frame(frame)
    out.columns = [neutralise_formula(str(c)) for c in out.columns]  # extra columns keep the user's names
    out.to_csv(path, index=False, lineterminator="\r\n")
