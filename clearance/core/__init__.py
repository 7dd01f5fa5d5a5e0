"""The pure domain core: no I/O, no clock, no environment reads.

Everything here takes values and returns values; time and randomness are passed in.
Adapters (store, attest, evidence, cli) import from here, never the reverse.
"""
