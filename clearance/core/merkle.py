"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.

Leaves are hashed as ``SHA-256(0x00 || data)`` and inner nodes as ``SHA-256(0x01 || left ||
right)``; the tree over ``n`` leaves splits at the largest power of two below ``n``. Every subtree
the algorithms need is either a *perfect* subtree (``2**level`` leaves starting at a multiple of
``2**level``, which a store keeps once written) or is built from perfect ones, so proofs are
computed through a :data:`NodeReader` that returns perfect subtree hashes by ``(level, index)``.

:class:`Frontier` is the compact range ``[0, n)``: the O(log n) perfect subtrees an append needs
to compute the next root, and the perfect nodes each append completes (to be stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: ``reader(level, index)`` -> hash of the perfect subtree of ``2**level`` leaves starting at
#: leaf ``index * 2**level``. Level 0 is the leaf hash.
NodeReader = Callable[[int, int], bytes]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(reader: NodeReader, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)``, where ``start`` is aligned as RFC 9162 recursion makes it."""
    size = end - start
    if size <= 0:
        raise ValueError(f"empty subtree [{start}, {end})")
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return reader(level, start >> level)
    k = _split(size)
    return node_hash(subtree_hash(reader, start, start + k), subtree_hash(reader, start + k, end))


def root_hash(reader: NodeReader, size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(reader, 0, size)


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[size]): the audit path of leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(subtree_hash(reader, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(reader, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[new_size]): shows the first tree is a prefix of the second."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(reader, old_size, 0, new_size, complete=True)


def _subproof(reader: NodeReader, m: int, start: int, end: int, *, complete: bool) -> list[bytes]:
    """RFC 9162 SUBPROOF(m, D[start:end], b), with ``m`` counted from ``start``."""
    if m == end - start:
        return [] if complete else [subtree_hash(reader, start, end)]
    k = _split(end - start)
    if m <= k:
        return [
            *_subproof(reader, m, start, start + k, complete=complete),
            subtree_hash(reader, start + k, end),
        ]
    return [
        *_subproof(reader, m - k, start + k, end, complete=False),
        subtree_hash(reader, start, start + k),
    ]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` place ``leaf`` (a leaf hash) at ``index``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree ``old_root`` a prefix of the tree ``new_root``?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


@dataclass(frozen=True)
class Node:
    """A perfect subtree hash: ``2**level`` leaves starting at leaf ``index * 2**level``."""

    level: int
    index: int
    hash: bytes


def frontier_coordinates(size: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` of the perfect subtrees that make up ``[0, size)``, largest first."""
    coords: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            coords.append((level, start >> level))
            start += 1 << level
    return coords


@dataclass
class Frontier:
    """The right edge of a growing tree; appending a leaf is amortised O(1) hashing."""

    size: int = 0
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def load(cls, size: int, reader: NodeReader) -> Frontier:
        nodes = [Node(lv, ix, reader(lv, ix)) for lv, ix in frontier_coordinates(size)]
        return cls(size, nodes)

    def append(self, leaf: bytes) -> list[Node]:
        """Add a leaf hash; return the perfect nodes it completed (leaf included), to be stored."""
        node = Node(0, self.size, leaf)
        completed = [node]
        while self.nodes and self.nodes[-1].level == node.level:
            left = self.nodes.pop()
            node = Node(node.level + 1, left.index >> 1, node_hash(left.hash, node.hash))
            completed.append(node)
        self.nodes.append(node)
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1].hash
        for node in reversed(self.nodes[:-1]):
            r = node_hash(node.hash, r)
        return r

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.nodes))
