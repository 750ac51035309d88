"""Plain dataclasses that the stages pass to each other. No I/O, no behaviour beyond derived values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class Category:
    """A synchronization section (website category) of Torgsoft."""

    id: int
    parent_id: int | None
    name: str
    text_before: str = ""
    text_after: str = ""
    image_file: str = ""


@dataclass(frozen=True)
class Characteristic:
    """One characteristic value of a product (static or dynamic)."""

    name: str
    value: str
    unit: str = ""
    dynamic: bool = False


@dataclass(frozen=True)
class Photo:
    """A product photo: a file relative to the photo folder, or an absolute http(s) URL."""

    position: int
    file_name: str

    @property
    def is_url(self) -> bool:
        """True when the photo is already a URL and is passed through as is."""
        return self.file_name.lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class PriceTier:
    """A wholesale price from a minimum quantity on."""

    price: Decimal
    min_qty: Decimal


@dataclass(frozen=True)
class Stock:
    """Quantity and reserved quantity of a good at one accounting center."""

    center_id: int
    qty: Decimal
    reserved: Decimal = Decimal(0)

    @property
    def available(self) -> Decimal:
        """What can still be sold here."""
        return self.qty - self.reserved


@dataclass
class Product:
    """A Torgsoft good as the catalog reader delivers it."""

    good_id: int
    name: str
    section_id: int | None = None
    model_id: int | None = None
    short_name: str = ""
    description_html: str = ""
    articul: str = ""
    barcode: str = ""
    producer: str = ""
    country: str = ""
    unit: str = ""
    keywords: str = ""
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None
    weight_kg: Decimal | None = None
    production_date: date | None = None
    min_order_qty: Decimal | None = None
    wholesale_min_qty: Decimal | None = None
    display_on_site: bool = True
    deleted: bool = False
    retail_price: Decimal | None = None
    wholesale_price: Decimal | None = None
    old_price: Decimal | None = None
    stocks: list[Stock] = field(default_factory=list)
    photos: list[Photo] = field(default_factory=list)
    characteristics: list[Characteristic] = field(default_factory=list)
    changed_at: datetime | None = None

    @property
    def offer_id(self) -> str:
        """Satu offer id / external_id: the GoodID as text, stable for ever."""
        return str(self.good_id)

    @property
    def available_qty(self) -> Decimal:
        """Available to sell: quantity − reserved, summed over the centers the reader kept."""
        return sum((s.available for s in self.stocks), Decimal(0))


@dataclass(frozen=True)
class Customer:
    """A buyer as Satu reports them (phone normalised to digits by the importer)."""

    name: str
    phone: str = ""
    email: str = ""
    city: str = ""
    address: str = ""


@dataclass(frozen=True)
class OrderLine:
    """One line of a Satu order."""

    external_id: str
    sku: str
    name: str
    quantity: Decimal
    price: Decimal
    #: Satu's own product id (`products[].id`): the only id of a product made in the cabinet
    satu_id: str = ""


@dataclass
class Order:
    """A Satu order, parsed from an inbox file."""

    id: int
    created: datetime
    modified: datetime | None
    status: str
    customer: Customer
    lines: list[OrderLine]
    total: Decimal
    paid: bool = False
    payment_method: str = ""
    delivery_method: str = ""
    delivery_address: str = ""
    delivery_cost: Decimal = Decimal(0)
    waybill: str = ""
    comment: str = ""
    reserve_until: date | None = None
    source: str = "satu"
    raw: dict = field(default_factory=dict)
    # --- Satu as it really is (issue 13); filled by `pipeline.orders.parse` ---
    #: `payment_data.status` (paid, paid_out, unpaid, refunded) or "" when Satu sent none
    payment_status: str = ""
    #: the buyer got the money back (`payment_data.status = refunded`): not paid; journal it
    refunded: bool = False
    #: the currency mark of the order total as written (`₸`, `USD`, `грн`; "" when none)
    currency: str = ""
    #: promo code and its discount (`special_offer_promocode`, `special_offer_discount`); the total is
    #: then `price_with_special_offer`, what the buyer pays
    promo_code: str = ""
    promo_discount: Decimal | None = None
    #: the person the courier calls (`delivery_recipient`), when Satu names one
    recipient_name: str = ""
    recipient_phone: str = ""
    #: the buyer asked not to be called back (`dont_call_customer_back`)
    dont_call: bool = False
    #: `cancellation{title, initiator}` of a cancelled order
    cancellation_title: str = ""
    cancellation_initiator: str = ""
    #: things to journal as warnings (a foreign currency mark, a refund); never a reason to quarantine
    warnings: list[str] = field(default_factory=list)
