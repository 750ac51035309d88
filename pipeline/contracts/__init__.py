"""Contracts between stages: one module per state namespace that one stage writes and another reads.

Each module holds the namespace name, a schema version, a typed record, and the only writer and reader,
so a record's shape lives in code, not in docstrings, and no other module spells the namespace.
"""
