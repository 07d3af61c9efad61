"""The consensus-critical core: canonical encoding, CIDs, file DAGs and Merkle hashing.

Everything in this package is pure (bytes in, bytes out) and versioned. Its outputs are
anchored on chain: changing any of them breaks every proof already published. Change a
format only by adding a new version beside the old one, and keep the old test vectors.
"""
