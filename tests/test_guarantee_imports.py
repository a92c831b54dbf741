"""No import cycles through the guarantee-pricing modules (imports inside functions count:
issue 14 found ``commands/guarantee.py`` and ``commands/guarantee_db.py`` importing each other)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("creditdb", "pipelines", "models")
PRICING = ("guarantee", "pricing", "loan_terms", "fee_schedule", "portfolio", "irb")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    mods = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name in mods and name != mod:
                    graph[mod].add(name)
    return graph


def cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Import paths from ``start`` back to itself (depth-first, each module once per path)."""
    found: list[list[str]] = []
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                found.append(path + [start])
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return found


def test_no_import_cycle_through_pricing_modules():
    graph = import_graph()
    pricing = [m for m in graph if any(k in m.rsplit(".", 1)[-1] for k in PRICING)]
    assert {"models.pricing", "models.pricing_kernel", "models.loan_terms", "pipelines.guarantees",
            "creditdb.commands.guarantee", "creditdb.commands.guarantee_db"} <= set(pricing)
    bad = {m: cycles_through(graph, m)[:1] for m in pricing if cycles_through(graph, m)}
    assert not bad, bad


def test_the_detector_finds_a_cycle():
    assert cycles_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == [["a", "b", "c", "a"]]
    assert cycles_through({"a": {"b"}, "b": set()}, "a") == []
