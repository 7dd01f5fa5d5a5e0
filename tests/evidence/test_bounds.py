"""The caps that keep summaries small."""

from __future__ import annotations

from clearance.evidence.bounds import NameList, TopCounter, clip, summary_scalar


class TestClip:
    def test_short_text_is_unchanged(self) -> None:
        assert clip("abc") == "abc"

    def test_long_text_ends_with_an_ellipsis(self) -> None:
        assert clip("abcdef", 4) == "abc…"

    def test_lone_surrogates_are_replaced(self) -> None:
        assert clip("a\ud800b") == "a?b"


class TestSummaryScalar:
    def test_values(self) -> None:
        assert summary_scalar(True) is True
        assert summary_scalar(2**53 - 1) == 2**53 - 1
        assert summary_scalar(-(2**53)) == str(-(2**53))
        assert summary_scalar(1.5) == 1.5
        assert summary_scalar(None) is None


class TestTopCounter:
    def test_top_is_most_frequent_then_alphabetical(self) -> None:
        counter = TopCounter()
        counter.update(["b", "a", "b", "c", "a", "d"])
        assert counter.top(3) == [("a", 2), ("b", 2), ("c", 1)]
        assert not counter.truncated

    def test_distinct_keys_are_bounded(self) -> None:
        counter = TopCounter(max_distinct=2)
        counter.update(["a", "b", "c", "a", "d"])
        assert counter.counts == {"a": 2, "b": 1}
        assert counter.other == 2
        assert counter.truncated


class TestNameList:
    def test_keeps_the_first_names_counts_all(self) -> None:
        names = NameList(2)
        for name in ["x", "y", "z"]:
            names.add(name)
        assert names.names == ["x", "y"]
        assert names.total == 3
        assert names.truncated
