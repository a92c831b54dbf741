"""Print docs/sme-definitions.md from models/data/sme_definitions.toml.

Usage: PYTHONPATH=. python scripts/sme_definitions_doc.py > docs/sme-definitions.md
"""

from __future__ import annotations

from typing import Any

from models.sme_definitions import REASONS, load_definitions


def _expr(e: Any) -> str:
    if isinstance(e, str):
        return e
    op, *a = e
    if op == "at_least":
        return f"at least {a[0]} of ({', '.join(_expr(x) for x in a[1:])})"
    return f"{op}({', '.join(_expr(x) for x in a)})"


def _bound(v: Any) -> str:
    if v == "unknown":
        return "unknown"
    (op, x), = v.items()
    return f"{op} {x:,}"


def render() -> str:
    rules, h = load_definitions()
    out = ["# SME definitions by country", "",
           "Generated from `models/data/sme_definitions.toml` (the data is authoritative; after editing it run",
           "`PYTHONPATH=. python scripts/sme_definitions_doc.py > docs/sme-definitions.md`). Each firm-year is",
           "classified under its country's rule in force at its fiscal year end (`models/sme_definitions.py`).",
           "A class is reported only when the law and the data decide it; a missing criterion, an unknown",
           "threshold, a sector the ISIC code cannot settle or a change of rule on a day not recorded gives",
           "*unknown* with the reason, never a guess.", "",
           f"Harmonised class ({h['title']}): micro < {h['micro']}, small {h['micro']}-{h['small'] - 1}, "
           f"medium {h['small']}-{h['medium'] - 1}, large >= {h['medium']} persons employed.", "",
           "| country | rule | in force from | classes | combining rule | source |", "|---|---|---|---|---|---|"]
    for r in rules:
        out.append(f"| {r.country} | {r.id} | {r.effective_from} | {', '.join(r.classes)} | {_expr(r.combine)} "
                   f"| {r.source} |")
    out += ["", "`either`: the firm is in a class if any criterion qualifies it (the smaller class wins);",
            "`both`: it must meet all (the larger class wins); `at least k of`: the k-th smallest class.", ""]
    out += ["## Why a firm-year has no class", "",
            "The classifier gives every unknown firm-year one reason (`sme_reason_code`, with the rule, sector",
            "or criteria in `sme_reason`); `creditdb stats --by country,size_class` counts them per country",
            "(\"Why some firms have no class\", `unknown_class` in `--json`), k-anonymous like the table.",
            "A criterion is named only when it matters: fixing it at either end of its possible classes",
            "would change the result. A missing criterion none of whose thresholds was established for the",
            "sector counts as a threshold not established (a value would not help).", "",
            "| code | meaning |", "|---|---|"]
    out += [f"| `{code}` | {text} |" for code, text in REASONS.items()]
    out.append("")
    for r in rules:
        out += [f"## {r.id}: {r.title}", "", r.notes.replace("\n", " "), "",
                f"Thresholds in {r.currency} (le: at most, lt: below):", ""]
        for sector, by_class in r.thresholds.items():
            codes = r.sectors.get(sector)
            label = f"{sector} ({', '.join(codes)})" if codes else f"{sector} (every other ISIC code)"
            parts = [f"{cls}: " + (", ".join(f"{k} {_bound(v)}" for k, v in by_class.get(cls, {}).items())
                                   or "not a class of this rule") for cls in r.classes[:-1]]
            out.append(f"- {label}: " + "; ".join(parts))
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
