-- The reservations of an order.
-- params: :order_id
-- columns: id, good_id, center_id, qty, state
SELECT r.ID AS id, r.GOOD_ID AS good_id, r.ACCOUNTING_CENTER_ID AS center_id, r.QTY AS qty, r.STATE AS state
FROM RESERVATION r
WHERE r.ORDER_ID = :order_id
ORDER BY r.ID
