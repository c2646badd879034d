"""Reversible encoding of vocabulary tokens into `rank_features` feature names.

A `rank_feature` query addresses a feature as `<field>.<feature>` and splits that name at its
LAST dot, so a token containing '.' (WordPiece has "u.s.", "e.g.", "...") could be indexed but
never queried. The codec percent-escapes exactly two characters, '%' (the escape itself) and
'.', and leaves everything else, '#', quotes, spaces, unicode, as it is, so that feature names
stay readable in the engine ("dog", "##s", "u%2Es%2E").
"""

from __future__ import annotations

_ESCAPES = {"%": "%25", ".": "%2E"}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}


def encode_term(token: str) -> str:
    """The feature name for `token` (non-empty; contains no '.' and decodes back exactly)."""
    if not token:
        raise ValueError("an empty token has no feature name")
    if "%" not in token and "." not in token:
        return token
    return "".join(_ESCAPES.get(ch, ch) for ch in token)


def decode_term(name: str) -> str:
    """The token whose feature name is `name`; rejects names `encode_term` cannot produce."""
    if "." in name:
        raise ValueError(f"feature name {name!r} contains a dot")
    if "%" not in name:
        return name
    out, i = [], 0
    while i < len(name):
        if name[i] == "%":
            escape = name[i : i + 3]
            if escape not in _UNESCAPES:
                raise ValueError(f"bad escape {escape!r} in feature name {name!r}")
            out.append(_UNESCAPES[escape])
            i += 3
        else:
            out.append(name[i])
            i += 1
    return "".join(out)
