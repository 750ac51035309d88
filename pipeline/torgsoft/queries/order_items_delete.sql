-- Remove the lines of an order before writing its changed lines (only for orders without an invoice).
DELETE FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = :order_id
