"""The sparse head's vocabulary: term id <-> token (vocab.txt: UTF-8, one token per line)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sparse_mm.errors import DataError


class Vocabulary:
    """An immutable list of distinct tokens; a token's line number is its term id.

    Tokens may contain any character but a newline ('.', '#', spaces, quotes, unicode...)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens: tuple[str, ...] = tuple(tokens)
        self._ids: dict[str, int] | None = None
        for i, token in enumerate(self.tokens):
            if not token or "\n" in token or "\r" in token:
                raise DataError(f"vocabulary token {i} ({token!r}) is empty or has a line break")

    @classmethod
    def from_file(cls, path: Path) -> Vocabulary:
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError as exc:
            raise DataError(f"{path}: vocabulary file not found") from exc
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            raise DataError(f"{path}: line {line} is not valid UTF-8") from exc
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        if not tokens:
            raise DataError(f"{path}: the vocabulary is empty")
        seen: dict[str, int] = {}
        for i, token in enumerate(tokens):
            if token == "":
                raise DataError(f"{path}: line {i + 1} is empty")
            if token in seen:
                raise DataError(
                    f"{path}: line {i + 1} repeats {token!r} from line {seen[token] + 1}"
                )
            seen[token] = i
        vocab = cls(tokens)
        vocab._ids = seen
        return vocab

    def save(self, path: Path) -> None:
        Path(path).write_text("".join(t + "\n" for t in self.tokens), encoding="utf-8")

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(self.tokens)

    def id_of(self, token: str) -> int:
        if self._ids is None:
            self._ids = {t: i for i, t in enumerate(self.tokens)}
        try:
            return self._ids[token]
        except KeyError:
            raise DataError(f"token {token!r} is not in the vocabulary") from None

    def token(self, i: int) -> str:
        return self.tokens[i]
