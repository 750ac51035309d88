"""Satu.kz: the seller API client (`client`), the local sandbox (`sandbox`) and fast pushes (`push`)."""
