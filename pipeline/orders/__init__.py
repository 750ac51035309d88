"""Orders: Satu orders into Torgsoft, and order status back to Satu."""
