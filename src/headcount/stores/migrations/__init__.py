"""Alembic migrations of the control store, applied at start by ``stores/sql.py``.

A package (not just a folder) so the scripts ship as part of ``headcount``.
"""
