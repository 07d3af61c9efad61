"""``python -m ledger.cli``: the ``tally`` command."""

from ledger.cli.main import main

main()
