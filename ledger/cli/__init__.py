"""The ``tally`` command (``main``), the seeded demo night and its simulation."""
