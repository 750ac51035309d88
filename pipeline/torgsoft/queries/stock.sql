-- Stock per good and accounting center, ordered by good_id (see products.sql).
-- The reader keeps the centers named in [torgsoft] accounting_centers and sums qty − reserved over them.
-- params: none
-- columns: good_id, center_id, qty, reserved
SELECT s.GOOD_ID AS good_id,
       s.ACCOUNTING_CENTER_ID AS center_id,
       s.QTY AS qty,
       s.RESERVED_QTY AS reserved
FROM GOOD_STOCK s
ORDER BY s.GOOD_ID, s.ACCOUNTING_CENTER_ID
