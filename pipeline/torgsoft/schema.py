"""Create the reference schema (schema.sql) in a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("schema.sql")


def statements(text: str | None = None) -> list[str]:
    """Split schema.sql into statements (a `;` at a line end closes one; `--` comments dropped)."""
    text = SCHEMA_FILE.read_text(encoding="utf-8") if text is None else text
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        code = line.split("--", 1)[0].rstrip()
        if not code.strip():
            continue
        current.append(code)
        if code.endswith(";"):
            out.append("\n".join(current)[:-1].strip())
            current = []
    if current:
        out.append("\n".join(current).strip())
    return out


def create_schema(con: Any) -> int:
    """Run every DDL statement of the reference schema; returns how many ran."""
    cur = con.cursor()
    stmts = statements()
    for stmt in stmts:
        cur.execute(stmt)
        con.commit()
    return len(stmts)


def user_tables(con: Any) -> dict[str, list[tuple[str, str]]]:
    """Every user table with its columns and their types (for `discover`)."""
    cur = con.cursor()
    cur.execute("""
        SELECT TRIM(rf.RDB$RELATION_NAME), TRIM(rf.RDB$FIELD_NAME), f.RDB$FIELD_TYPE, f.RDB$FIELD_SUB_TYPE,
               f.RDB$FIELD_LENGTH, f.RDB$FIELD_PRECISION, f.RDB$FIELD_SCALE, f.RDB$CHARACTER_LENGTH,
               TRIM(cs.RDB$CHARACTER_SET_NAME)
        FROM RDB$RELATION_FIELDS rf
        JOIN RDB$RELATIONS r ON r.RDB$RELATION_NAME = rf.RDB$RELATION_NAME
        JOIN RDB$FIELDS f ON f.RDB$FIELD_NAME = rf.RDB$FIELD_SOURCE
        LEFT JOIN RDB$CHARACTER_SETS cs ON cs.RDB$CHARACTER_SET_ID = f.RDB$CHARACTER_SET_ID
        WHERE COALESCE(r.RDB$SYSTEM_FLAG, 0) = 0 AND r.RDB$VIEW_BLR IS NULL
        ORDER BY rf.RDB$RELATION_NAME, rf.RDB$FIELD_POSITION
    """)
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, ftype, sub, length, precision, scale, charlen, charset in cur.fetchall():
        tables.setdefault(table, []).append(
            (column, _type_text(ftype, sub, length, precision, scale, charlen, charset))
        )
    return tables


def _type_text(
    ftype: int,
    sub: int | None,
    length: int | None,
    precision: int | None,
    scale: int | None,
    charlen: int | None,
    charset: str | None,
) -> str:
    scale = -(scale or 0)
    if ftype in (7, 8, 16) and (sub or 0) in (1, 2):
        return f"NUMERIC({precision}, {scale})" if sub == 1 else f"DECIMAL({precision}, {scale})"
    names = {
        7: "SMALLINT",
        8: "INTEGER",
        16: "BIGINT",
        10: "FLOAT",
        27: "DOUBLE PRECISION",
        12: "DATE",
        13: "TIME",
        35: "TIMESTAMP",
        23: "BOOLEAN",
        26: "INT128",
        24: "DECFLOAT(16)",
        25: "DECFLOAT(34)",
        28: "TIME WITH TIME ZONE",
        29: "TIMESTAMP WITH TIME ZONE",
    }
    if ftype == 37:
        return f"VARCHAR({charlen or length})" + (f" {charset}" if charset else "")
    if ftype == 14:
        return f"CHAR({charlen or length})" + (f" {charset}" if charset else "")
    if ftype == 261:
        return (
            "BLOB SUB_TYPE TEXT" + (f" {charset}" if charset else "") if sub == 1 else f"BLOB SUB_TYPE {sub}"
        )
    return names.get(ftype, f"TYPE {ftype}")
