"""Glue around ccxt shared by the live market source and the live venue (imported only by them)."""
