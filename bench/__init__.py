"""The benchmarks of Tally Ledger: one package, one module per job.

    .venv/bin/tally bench [national options]          the national replay (``bench.national``)
    .venv/bin/python -m bench [national|api|cid|merkle|anchor] [options]

Modules:

    client     the raw HTTP/1.1 keep-alive client of every load generator
    load       the national night's load-generator processes (sign-in, photos, tallies)
    war_room   the war room's stages of that load generator (decisions, certify)
    loops      the closed- and open-loop load of ``bench.api``
    photos     unique, valid JPEGs of a given size
    metrics    /proc sampling (RSS, VmHWM, CPU), disk use, percentiles, the peak-RSS launcher
    servers    starting, waiting for and stopping servers (``tally serve``, the bare FastAPI app)
    results    bench/results.json: read-modify-write, one key per figure
    national   the national night, its stages in order; its parts: ``driver`` (processes and
               the recording of stages), ``stages``, ``certify``, ``observe``, ``people``,
               ``figures`` and ``side_by_side``
    api, cid, merkle, anchor   the focused benchmarks (``api_setup``: what ``api`` prepares)

Figures are merged into ``bench/results.json`` beside this package (one key per figure).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The source tree: the benchmarks start ``tally serve`` and node helpers from it."""

__all__ = ["ROOT"]
