"""The Merkle module against the recursive definitions of RFC 9162, on generated trees."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.core import merkle


def mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 section 2.1.1."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def reader_for(leaves: list[bytes]) -> merkle.NodeReader:
    def read(level: int, index: int) -> bytes:
        size = 1 << level
        chunk = leaves[index * size : (index + 1) * size]
        assert len(chunk) == size, "asked for a subtree that is not perfect"
        return mth(chunk)

    return read


data_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


class TestHashing:
    def test_empty_tree_root_is_hash_of_nothing(self) -> None:
        assert merkle.root_hash(reader_for([]), 0) == hashlib.sha256(b"").digest()

    def test_leaf_and_node_prefixes_are_domain_separated(self) -> None:
        assert merkle.leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
        assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()

    @given(data_lists)
    def test_root_matches_rfc_definition(self, leaves: list[bytes]) -> None:
        assert merkle.root_hash(reader_for(leaves), len(leaves)) == mth(leaves)

    @given(data_lists)
    def test_frontier_root_after_each_append_matches_rfc(self, leaves: list[bytes]) -> None:
        frontier = merkle.Frontier()
        stored: dict[tuple[int, int], bytes] = {}
        for i, leaf in enumerate(leaves):
            for node in frontier.append(merkle.leaf_hash(leaf)):
                stored[(node.level, node.index)] = node.hash
            assert frontier.root() == mth(leaves[: i + 1])
        # The nodes an append reports are exactly the perfect subtrees, so a store of them
        # can serve every later proof and reload the frontier.
        reloaded = merkle.Frontier.load(len(leaves), lambda lv, ix: stored[(lv, ix)])
        assert reloaded.root() == frontier.root()
        assert merkle.root_hash(lambda lv, ix: stored[(lv, ix)], len(leaves)) == mth(leaves)


class TestInclusion:
    @given(data_lists, st.data())
    def test_proof_matches_rfc_and_verifies(self, leaves: list[bytes], data: st.DataObject) -> None:
        n = len(leaves)
        m = data.draw(st.integers(0, n - 1))
        proof = merkle.inclusion_proof(reader_for(leaves), m, n)
        assert proof == path(m, leaves)
        assert merkle.verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, proof, mth(leaves))

    @given(data_lists, st.data())
    def test_wrong_leaf_index_or_root_fails(self, leaves: list[bytes], data: st.DataObject) -> None:
        n = len(leaves)
        m = data.draw(st.integers(0, n - 1))
        proof = merkle.inclusion_proof(reader_for(leaves), m, n)
        leaf = merkle.leaf_hash(leaves[m])
        assert not merkle.verify_inclusion(
            merkle.leaf_hash(leaves[m] + b"x"), m, n, proof, mth(leaves)
        )
        assert not merkle.verify_inclusion(leaf, m, n, proof, mth([*leaves, b"extra"]))
        if n > 1:
            other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m))
            if leaves[other] != leaves[m]:
                assert not merkle.verify_inclusion(leaf, other, n, proof, mth(leaves))

    def test_index_outside_tree_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not in a tree of size 3"):
            merkle.inclusion_proof(reader_for([b"a", b"b", b"c"]), 3, 3)
        assert not merkle.verify_inclusion(b"x" * 32, 3, 3, [], b"y" * 32)


class TestConsistency:
    @given(data_lists, st.data())
    @settings(max_examples=200)
    def test_proof_matches_rfc_and_verifies(self, leaves: list[bytes], data: st.DataObject) -> None:
        n = len(leaves)
        m = data.draw(st.integers(1, n))
        proof = merkle.consistency_proof(reader_for(leaves), m, n)
        assert proof == (subproof(m, leaves, True) if m < n else [])
        assert merkle.verify_consistency(m, n, mth(leaves[:m]), mth(leaves), proof)

    @given(data_lists, st.data())
    def test_a_rewritten_history_fails(self, leaves: list[bytes], data: st.DataObject) -> None:
        n = len(leaves)
        m = data.draw(st.integers(1, n))
        i = data.draw(st.integers(0, m - 1))
        forged = list(leaves)
        forged[i] = leaves[i] + b"!"
        proof = merkle.consistency_proof(reader_for(forged), m, n)
        assert not merkle.verify_consistency(m, n, mth(leaves[:m]), mth(forged), proof)

    def test_zero_and_equal_sizes(self) -> None:
        leaves = [b"a", b"b"]
        assert merkle.verify_consistency(0, 2, merkle.EMPTY_ROOT, mth(leaves), [])
        assert merkle.verify_consistency(2, 2, mth(leaves), mth(leaves), [])
        assert not merkle.verify_consistency(2, 2, mth(leaves), mth([b"a"]), [])
        assert not merkle.verify_consistency(3, 2, mth(leaves), mth(leaves), [])
