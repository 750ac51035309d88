-- One order line; GOOD_ID is NULL for a line that matched no good (the order comment says which).
-- params: :order_id, :line_no, :good_id, :qty, :price
INSERT INTO CUSTOMER_ORDER_ITEM (ORDER_ID, LINE_NO, GOOD_ID, QTY, PRICE)
VALUES (:order_id, :line_no, :good_id, :qty, :price)
