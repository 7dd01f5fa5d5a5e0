"""Signing: Ed25519 keys, DSSE envelopes and in-toto Statement v1 / SLSA predicates."""
