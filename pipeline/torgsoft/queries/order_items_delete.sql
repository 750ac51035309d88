-- Remove the lines of an order before writing its changed lines (only for orders without an invoice).
-- params: :order_id
DELETE FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = :order_id
