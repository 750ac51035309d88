"""Torgsoft ⇄ Satu.kz exchange."""

__version__ = "0.1.0"
