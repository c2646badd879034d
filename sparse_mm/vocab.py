"""The sparse head's vocabulary: term id <-> token.

`vocab.txt` is UTF-8 with one token per line; the line order is the term id (line 1 is id 0).
Tokens are taken verbatim: '.', '#', spaces, quotes, backslashes and any unicode are allowed;
only the line feed separates tokens. A carriage return is refused rather than kept, because a
file saved with Windows line endings would otherwise silently shift every token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sparse_mm.errors import DataError


class Vocabulary:
    """An immutable sequence of distinct, non-empty tokens; a token's position is its term id."""

    __slots__ = ("_ids", "_tokens")

    def __init__(self, tokens: Iterable[str], *, source: str = "vocabulary") -> None:
        tokens = tuple(tokens)
        ids: dict[str, int] = {}
        for i, token in enumerate(tokens):
            where = f"{source}: line {i + 1}"
            if not isinstance(token, str) or token == "":
                raise DataError(f"{where} is empty (or not a string): {token!r}")
            if "\n" in token or "\r" in token:
                kind = "a line feed" if "\n" in token else "a carriage return (CRLF file?)"
                raise DataError(f"{where}: token {token!r} contains {kind}")
            if token in ids:
                raise DataError(f"{where} repeats {token!r} from line {ids[token] + 1}")
            ids[token] = i
        if not tokens:
            raise DataError(f"{source}: the vocabulary is empty")
        object.__setattr__(self, "_tokens", tokens)
        object.__setattr__(self, "_ids", ids)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Vocabulary is immutable")

    def __reduce__(self) -> tuple:
        return (Vocabulary, (self._tokens,))

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    @classmethod
    def from_file(cls, path: str | Path) -> Vocabulary:
        """Read `vocab.txt`; a missing file, bad UTF-8, empty or repeated token is a DataError
        naming the file and the line. A final line feed is optional."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{path}: vocabulary file not found") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read the vocabulary file: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataError(f"{path}: line {line} is not valid UTF-8") from None
        tokens = text.split("\n")
        if tokens[-1] == "":
            tokens.pop()  # the final line feed ends the last line; it does not start a new one
        return cls(tokens, source=str(path))

    def save(self, path: str | Path) -> None:
        """Write one token per line, each ending with a line feed."""
        Path(path).write_bytes("".join(t + "\n" for t in self._tokens).encode("utf-8"))

    def __len__(self) -> int:
        return len(self._tokens)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def id_of(self, token: str) -> int:
        """Term id of `token`; an unknown token is a DataError (never a bare KeyError)."""
        try:
            return self._ids[token]
        except (KeyError, TypeError):
            raise DataError(f"token {token!r} is not in the vocabulary") from None

    def token(self, i: int) -> str:
        """Token of term id `i` (0 <= i < len); out of range is a DataError."""
        if not 0 <= int(i) < len(self._tokens):
            raise DataError(f"term id {i} is outside the vocabulary (0..{len(self) - 1})")
        return self._tokens[int(i)]
