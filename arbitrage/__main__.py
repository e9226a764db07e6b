"""``python -m arbitrage`` runs the ``arb`` command."""

from arbitrage.cli import main

main()
