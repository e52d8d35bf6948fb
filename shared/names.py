"""Matching of names people type: case-insensitive, accents ignored (``Crítico`` = ``critico``)."""

from __future__ import annotations

import unicodedata


def fold(name: str) -> str:
    """The comparison key of a name: no accents, case-folded, inner spaces as ``_``."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "_".join(bare.casefold().replace("-", " ").split())
