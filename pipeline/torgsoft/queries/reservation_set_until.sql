-- Move the end date of an order's open reservations (the customer gave another date).
-- params: :reserved_until, :order_id
UPDATE RESERVATION SET RESERVED_UNTIL = :reserved_until WHERE ORDER_ID = :order_id AND STATE IN (0, 1)
