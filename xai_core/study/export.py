"""The raw responses as CSV and Parquet files, safe to open in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) would run as a formula in
Excel, LibreOffice or Google Sheets (OWASP, "CSV Injection"); such cells get a leading apostrophe, which
spreadsheets show as text. Numbers are left as numbers. Text was already cleaned of control characters when it was
stored. Both files hold the same table (the escaping applies to both, so they agree cell for cell).
"""

from __future__ import annotations

import io

import pandas as pd

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` with a leading apostrophe when it is text a spreadsheet would treat as a formula."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


def safe_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every text column of ``df`` with :func:`safe_cell` applied (column names too)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(safe_cell)
    out.columns = [str(safe_cell(str(c))) for c in out.columns]
    return out


def to_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV (every field quoted where needed by the csv module), formula-like text escaped."""
    return safe_table(df).to_csv(index=False).encode("utf-8")


def to_parquet(df: pd.DataFrame) -> bytes:
    """Parquet (pyarrow), formula-like text escaped as in the CSV."""
    buf = io.BytesIO()
    safe_table(df).to_parquet(buf, index=False)
    return buf.getvalue()
