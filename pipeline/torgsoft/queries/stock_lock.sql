-- Stock of a good at a center, locked until the end of the transaction (two orders for the last item
-- cannot both reserve it).
-- params: :good_id, :center_id
-- columns: qty, reserved
SELECT s.QTY AS qty, s.RESERVED_QTY AS reserved
FROM GOOD_STOCK s
WHERE s.GOOD_ID = :good_id AND s.ACCOUNTING_CENTER_ID = :center_id
WITH LOCK
