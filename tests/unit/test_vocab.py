"""vocab.txt: verbatim tokens, one per line, with clear errors naming the file and the line."""

from __future__ import annotations

import pickle

import pytest

from sparse_mm.errors import DataError
from sparse_mm.vocab import Vocabulary

# characters that trip naive readers: dots and hashes (WordPiece), spaces at either end, tabs,
# quotes, backslashes, and the separators that str.splitlines() would split on but we must not
SPECIAL = [
    "[CLS]",
    "u.s.",
    "##s",
    "#",
    ".",
    " lead",
    "trail ",
    "a b",
    "tab\there",
    '"q"',
    "'",
    "back\\slash",
    "\\n",
    "naïve",
    "日本",
    "🙂",
    "line\u2028sep",
    "next\x85line",
    "form\x0cfeed",
    "vt\x0b",
    "nul\x00",
    "50%",
    "{}",
]


def test_special_tokens_round_trip_byte_exact(tmp_path):
    path = tmp_path / "vocab.txt"
    Vocabulary(SPECIAL).save(path)
    assert path.read_bytes() == ("\n".join(SPECIAL) + "\n").encode("utf-8")
    again = Vocabulary.from_file(path)
    assert again.tokens == tuple(SPECIAL) and again == Vocabulary(SPECIAL)
    assert [again.id_of(t) for t in SPECIAL] == list(range(len(SPECIAL)))
    assert [again.token(i) for i in range(len(SPECIAL))] == SPECIAL


def test_final_line_feed_is_optional(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"dog\ncat")
    assert Vocabulary.from_file(path).tokens == ("dog", "cat")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the vocabulary is empty"),
        (b"\n", "line 1 is empty"),
        (b"dog\n\ncat\n", "line 2 is empty"),
        (b"dog\ncat\ndog\n", "line 3 repeats 'dog' from line 1"),
        (b"dog\r\ncat\r\n", "line 1: token 'dog\\\\r' contains a carriage return"),
        (b"dog\ncat\n\xff\xfe\n", "line 3 is not valid UTF-8"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        Vocabulary.from_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="vocabulary file not found"):
        Vocabulary.from_file(tmp_path / "nope.txt")


def test_lookups_raise_clear_errors_not_key_errors():
    vocab = Vocabulary(["dog", "cat"])
    assert vocab.id_of("cat") == 1 and vocab.token(0) == "dog"
    assert "dog" in vocab and "cow" not in vocab and list(vocab) == ["dog", "cat"]
    with pytest.raises(DataError, match="'cow' is not in the vocabulary"):
        vocab.id_of("cow")
    with pytest.raises(DataError, match="term id 2 is outside"):
        vocab.token(2)
    with pytest.raises(DataError, match="term id -1 is outside"):
        vocab.token(-1)


def test_immutable_hashable_and_picklable():
    vocab = Vocabulary(["dog", "cat"])
    with pytest.raises(AttributeError):
        vocab.tokens = ("x",)
    assert isinstance(vocab.tokens, tuple)
    assert hash(vocab) == hash(Vocabulary(["dog", "cat"]))
    assert pickle.loads(pickle.dumps(vocab)) == vocab
    with pytest.raises(DataError, match="line 2 repeats"):
        Vocabulary(["a", "a"])
