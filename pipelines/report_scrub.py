"""What of a validation finding may be stored in the database (``submission.report``).

A finding (``pipelines.validate.Issue``) carries the submitted value so that the bank
sees what was wrong; the bank's own local ``--report`` file and its terminal keep it.
The stored report is read by the operator, the supervisor and anyone holding a dump, so
it never holds a raw identifier: the value of a finding is withheld (stored as ``None``,
with ``value_withheld`` naming the kind of column) when the finding is on

* a ``key`` column (borrower key, corporate number, loan key): a bank's own identifiers,
  stored elsewhere only as keyed hashes;
* a ``pii`` column (firm name, address, representative, phone): never stored at all;
* a ``text`` column (postal code: only its first 3 characters are kept, as the region);
* the date of establishment (only its year is kept);

or when the value shows several columns (``a=..., b=...``) one of which is such a
column, and for every finding of the file-level key check (``file.unique_key``: its
value is the row's key) and of ``borrower.unknown``. What stays is the row number, the
column, the rule, the severity and the message (messages are fixed texts of the rules
and name no value).
"""

from __future__ import annotations

from typing import Any

from pipelines import dictionary as D

#: column types whose values are never stored in a report
WITHHELD_TYPES = ("key", "pii", "text")
#: columns kept only coarsened in the tables (their full value is identifying)
WITHHELD_COLUMNS = ("established",)
#: rules whose value is a key whatever the column
WITHHELD_RULES = ("file.unique_key", "borrower.unknown")


def withheld_columns(kind: str) -> frozenset[str]:
    """Columns of ``kind`` whose submitted values a stored report never shows."""
    return frozenset(D.of_type(kind, *WITHHELD_TYPES)) | frozenset(
        c for c in WITHHELD_COLUMNS if c in D.names(kind))


def scrub_issue(kind: str, issue: dict[str, Any]) -> dict[str, Any]:
    """The stored form of one finding (a dict of ``Issue.as_dict()``): see the module docstring."""
    hidden = withheld_columns(kind)
    value = issue.get("value")
    why = None
    if issue.get("rule") in WITHHELD_RULES:
        why = "key"
    elif issue.get("column") in hidden:
        why = _type_of(kind, issue["column"])
    elif isinstance(value, str) and any(f"{c}=" in value for c in hidden):
        why = "identifying column"
    if why is None:
        return dict(issue)
    return {**issue, "value": None, "value_withheld": why}


def scrub_issues(kind: str, issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`scrub_issue` of every finding, in order."""
    return [scrub_issue(kind, i) for i in issues]


def _type_of(kind: str, column: str) -> str:
    for c in D.COLUMNS[kind]:
        if c.name == column:
            return "date of establishment" if c.name == "established" else c.type
    return "identifying column"
