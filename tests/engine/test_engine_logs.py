"""How log frames from docker-py become lines: no engine."""

from __future__ import annotations

from swarmai.engine.logs import join_frames


def test_one_frame_per_message_one_line_each() -> None:
    frames = [b"2026-12-02T05:34:05.1Z out\n", b"2026-12-02T05:34:05.2Z \n",
              b"2026-12-02T05:34:05.3Z crlf\r\n"]
    assert list(join_frames(frames, prefix_fields=1)) == [
        "2026-12-02T05:34:05.1Z out", "2026-12-02T05:34:05.2Z ", "2026-12-02T05:34:05.3Z crlf"]


def test_a_message_split_over_frames_comes_back_whole_with_one_prefix() -> None:
    # The engine cuts messages at 16 KiB and prefixes every piece again (seen on 26.1).
    text = "é" * 10
    raw = text.encode()
    frames = [b"T1 " + raw[:5], b"T1 " + raw[5:] + b"\n", b"T2 next\n"]
    assert list(join_frames(frames, prefix_fields=1)) == [f"T1 {text}", "T2 next"]
    service = [b"T1 a=1,b=2 abc", b"T1 a=1,b=2 def\n"]
    assert list(join_frames(service, prefix_fields=2)) == ["T1 a=1,b=2 abcdef"]


def test_an_unfinished_last_line_is_kept() -> None:
    assert list(join_frames([b"T1 no newline"], prefix_fields=1)) == ["T1 no newline"]
