"""Small, valid submission files built in code, for tests that need exact control."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select, text

from creditdb.schema import Base


def statements(n: int = 5, bank: str = "BK1", start: int = 0, year: int = 2021, corp: bool = True) -> pd.DataFrame:
    rows = []
    for i in range(start, start + n):
        ta = 100_000_000 + i * 1_000_000
        na = 30_000_000 + i * 10_000
        tl = ta - na
        rows.append({
            "borrower_key": f"{bank}-B{i:05d}",
            "corporate_number": f"{9000000000000 + i:013d}" if corp else "",
            "firm_name": f"Kabushiki Kaisha Test{i:05d}",
            "address": f"{i}-1-1 Marunouchi, Chiyoda-ku, Tokyo",
            "representative": f"Taro Yamada{i:05d}",
            "phone": f"03-5555-{i:04d}",
            "country": "JP",
            "postal_code": f"{100 + i % 50:03d}-{9100 + i:04d}",
            "industry": "CGFIM"[i % 5],
            "established": f"{1980 + i % 30}-04-01",
            "employees": 5 + i,
            "fiscal_year_end": f"{year}-03-31",
            "months": 12,
            "currency": "JPY",
            "sales": 250_000_000 + i * 1000,
            "cost_of_sales": 180_000_000,
            "operating_profit": 8_000_000,
            "ordinary_profit": 7_000_000,
            "net_income": 4_000_000 - i * 1000,
            "interest_expense": 1_000_000,
            "depreciation": 2_000_000,
            "cash": 10_000_000,
            "receivables": 20_000_000,
            "inventory": 15_000_000,
            "current_assets": 50_000_000,
            "fixed_assets": ta - 50_000_000,
            "total_assets": ta,
            "current_liabilities": 30_000_000,
            "interest_bearing_debt": 40_000_000,
            "total_liabilities": tl,
            "net_assets": na,
        })
    return pd.DataFrame(rows)


def loans(stmts: pd.DataFrame, bank: str = "BK1") -> pd.DataFrame:
    return pd.DataFrame({
        "borrower_key": stmts.borrower_key,
        "corporate_number": stmts.corporate_number,
        "loan_key": [f"{bank}-L{i:05d}" for i in range(len(stmts))],
        "origination_date": "2021-06-01",
        "maturity_date": "2026-06-01",
        "currency": "JPY",
        "amount": 20_000_000,
        "interest_rate": 0.015,
        "amortization": "annuity",
        "secured": "false",
        "guarantee_coverage": 0.8,
        "outstanding": 15_000_000,
    })


def defaults(stmts: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "borrower_key": stmts.borrower_key,
        "corporate_number": stmts.corporate_number,
        "default_date": "2022-09-30",
        "event_type": "past_due_90",
        "exposure": 12_000_000,
        "currency": "JPY",
    })


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def table_fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and a SHA-256 of every row of every table (ordered by primary key)."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def all_text(engine: Engine) -> str:
    """Every value of every column of every table, as one string (for PII scans)."""
    parts = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).all():
                parts.append(repr(tuple(row)))
        if engine.dialect.name == "postgresql":
            parts.append(repr(conn.execute(text("select current_database()")).all()))
    return "\n".join(parts)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
