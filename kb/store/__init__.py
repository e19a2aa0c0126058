"""The knowledge base itself: the declaration facts its tables and the checker share
(`schema`), its tables and migrations (`tables`), and the rows a checked rulebook contributes
(`rulebook_rows`).

The lowest of kb's packages: it imports `dsl` only, never another package of `kb`.
"""
