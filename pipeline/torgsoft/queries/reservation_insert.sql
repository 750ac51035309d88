-- Reserve goods for an order. STATE: 0 active, 1 awaiting stock, 2 released, 3 consumed by an invoice.
-- params: :reservation_id, :order_id, :good_id, :center_id, :qty, :state, :reserved_until
INSERT INTO RESERVATION (ID, ORDER_ID, GOOD_ID, ACCOUNTING_CENTER_ID, QTY, STATE, RESERVED_UNTIL)
VALUES (:reservation_id, :order_id, :good_id, :center_id, :qty, :state, :reserved_until)
