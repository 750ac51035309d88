-- Lines of a customer order.
-- params: :order_id
-- columns: line_no, good_id, qty, price
SELECT i.LINE_NO AS line_no, i.GOOD_ID AS good_id, i.QTY AS qty, i.PRICE AS price
FROM CUSTOMER_ORDER_ITEM i
WHERE i.ORDER_ID = :order_id
ORDER BY i.LINE_NO
