"""Loopback exchange emulators: real venues' wire protocols on 127.0.0.1 for the unmodified ccxt.

``core`` holds the exchange-neutral state (markets, balances, books, orders, faults, request log),
``server`` serves an emulator in the running loop or as ``python -m tests.emulator``, and one module
per venue speaks its protocol. See docs/emulator.md.
"""
