-- The stock watcher without a change query (`[torgsoft] change_query = false`): stock and retail price of
-- every good, one row per good and accounting center, ordered by good_id — its first read, and the read
-- after a change of many goods at once (see stock_digests.sql). Only the few columns a stock push needs:
-- never descriptions, photos or characteristics.
-- Columns: good_id, accounting_center_id, qty, reserved_qty, retail_price (as products.sql picks it),
-- and optionally deleted, display_on_site. Parameter :price_center as in products.sql.
-- params: :price_center
-- columns: good_id, accounting_center_id, qty, reserved_qty, retail_price
-- optional columns: deleted, display_on_site
SELECT g.GOOD_ID AS good_id,
       s.ACCOUNTING_CENTER_ID AS accounting_center_id,
       s.QTY AS qty,
       s.RESERVED_QTY AS reserved_qty,
       COALESCE(pc.RETAIL_PRICE, p0.RETAIL_PRICE) AS retail_price,
       g.IS_DELETED AS deleted,
       g.DISPLAY_ON_SITE AS display_on_site
FROM GOOD g
LEFT JOIN GOOD_STOCK s ON s.GOOD_ID = g.GOOD_ID
LEFT JOIN GOOD_PRICE p0 ON p0.GOOD_ID = g.GOOD_ID AND p0.ACCOUNTING_CENTER_ID = 0
LEFT JOIN GOOD_PRICE pc ON pc.GOOD_ID = g.GOOD_ID AND pc.ACCOUNTING_CENTER_ID = :price_center
                       AND :price_center <> 0
ORDER BY g.GOOD_ID, s.ACCOUNTING_CENTER_ID
