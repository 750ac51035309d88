"""Satu-shaped order dicts for the order tests (same fields as GET /orders/{id})."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def satu_order(
    order_id: int,
    *,
    lines: list[dict[str, Any]] | None = None,
    status: str = "pending",
    paid: bool = False,
    phone: str = "+7 (701) 123-45-67",
    email: str = "aigerim@example.kz",
    first: str = "Айгерим",
    last: str = "Сейтқали",
    modified: str = "2026-11-27T10:00:00.000000+05:00",
    created: str = "2026-11-27T09:30:00.123456+05:00",
    **extra: Any,
) -> dict[str, Any]:
    """One order as Satu returns it; lines are {external_id, sku, quantity, price} dicts."""
    lines = (
        lines
        if lines is not None
        else [{"external_id": "1", "sku": "ART-000001", "quantity": 1, "price": "1 950 ₸"}]
    )
    products = []
    for n, ln in enumerate(lines, 1):
        products.append(
            {
                "id": 9000 + n,
                "external_id": ln.get("external_id", ""),
                "sku": ln.get("sku", ""),
                "name": ln.get("name", f"Товар {n}"),
                "quantity": ln.get("quantity", 1),
                "price": ln.get("price", "100 ₸"),
                "total_price": "",
                "measure_unit": "шт.",
                "image": "",
                "url": "",
            }
        )
    order = {
        "id": order_id,
        "date_created": created,
        "date_modified": modified,
        "client_first_name": first,
        "client_second_name": "",
        "client_last_name": last,
        "client_id": 55,
        "client_notes": "Позвоните заранее",
        "phone": phone,
        "email": email,
        "price": "1 950 ₸",
        "full_price": "1 950 ₸",
        "delivery_cost": 0,
        "delivery_address": "Алматы, ул. Абая 10",
        "delivery_option": {"id": 1, "name": "Курьер", "shipping_service": None},
        "delivery_provider_data": {
            "provider": "kazpost",
            "type": "W2D",
            "recipient_warehouse_id": None,
            "declaration_number": "",
            "unified_status": None,
        },
        "payment_option": {"id": 2, "name": "Наличными"},
        "payment_data": {"type": "cash", "status": "paid" if paid else "unpaid"},
        "status": status,
        "status_name": status,
        "source": "portal",
        "cancellation": None,
        "products": products,
    }
    order.update(extra)
    return order


def write_order(folder: Path, order: dict[str, Any], name: str | None = None, wrap: bool = True) -> Path:
    """Drop an order file into a folder (as the fetcher would, but directly)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"satu-order-{order['id']}-{order['date_modified'][:19].replace(':', '')}.json")
    path.write_text(json.dumps({"order": order} if wrap else order, ensure_ascii=False), encoding="utf-8")
    return path
