"""Incremental text: multi-byte characters are never split, stop strings are cut wherever they fall."""
from serve_fakes import ByteTokenizer
from trtllm_flash.serve.detokenizer import IncrementalDetokenizer


def _feed(detokenizer, data: bytes, finish_at_end: bool = True):
    pieces = []
    for index, byte in enumerate(data):
        pieces.append(detokenizer.add([byte], finished=finish_at_end and index == len(data) - 1))
    return pieces


def test_multibyte_character_is_held_until_complete():
    pieces = _feed(IncrementalDetokenizer(ByteTokenizer()), "aé€".encode())
    assert "".join(pieces) == "aé€"
    assert all("\ufffd" not in piece for piece in pieces)


def test_stop_string_spanning_tokens_is_cut_and_never_sent():
    detokenizer = IncrementalDetokenizer(ByteTokenizer(), stop=["STOP"])
    pieces = _feed(detokenizer, b"abcSTOPdef", finish_at_end=False)
    assert "".join(pieces) == "abc" and detokenizer.stopped and detokenizer.text == "abc"
    assert detokenizer.num_tokens == len(b"abcSTOP")   # tokens after the stop are ignored


def test_earliest_of_several_stop_strings_wins():
    detokenizer = IncrementalDetokenizer(ByteTokenizer(), stop=["cd", "b"])
    assert "".join(_feed(detokenizer, b"abcd")) == "a"


def test_held_back_tail_is_released_on_finish():
    detokenizer = IncrementalDetokenizer(ByteTokenizer(), stop=["xyz"])
    pieces = _feed(detokenizer, b"abxy")
    assert pieces == ["", "", "a", "bxy"] and not detokenizer.stopped   # 2 chars held back for "xyz"
