-- The stock watcher without a change query: one good whose digest changed (stock_digests.sql), with the
-- columns of stock_levels.sql. Parameters: :good_id, :price_center.
-- params: :good_id, :price_center
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
WHERE g.GOOD_ID = :good_id
ORDER BY s.ACCOUNTING_CENTER_ID
