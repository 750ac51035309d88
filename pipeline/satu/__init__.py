"""Satu.kz: the pure API vocabulary (`api`), the seller API client (`client`) and fast pushes (`push`)."""
