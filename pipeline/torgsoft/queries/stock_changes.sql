-- The stock watcher's read of what changed (`[torgsoft] change_query = true`): the goods whose stock
-- or price row changed at or after :changed_since, with all their stock rows (one per accounting
-- center) and their retail price, ordered by good_id. CHANGED_AT must be kept current on GOOD_STOCK
-- and GOOD_PRICE (the reference schema's triggers TR_GOOD_STOCK_CHANGED / TR_GOOD_PRICE_CHANGED do).
-- Columns: good_id, accounting_center_id, qty, reserved_qty, changed_at (the good's latest change, in
-- the database's clock), retail_price, and optionally deleted, display_on_site.
-- Parameters: :changed_since, :price_center (as in products.sql).
-- params: :changed_since, :price_center
-- columns: good_id, accounting_center_id, qty, reserved_qty, retail_price, changed_at
-- optional columns: deleted, display_on_site
SELECT c.GOOD_ID AS good_id,
       s.ACCOUNTING_CENTER_ID AS accounting_center_id,
       s.QTY AS qty,
       s.RESERVED_QTY AS reserved_qty,
       c.CHANGED_AT AS changed_at,
       COALESCE(pc.RETAIL_PRICE, p0.RETAIL_PRICE) AS retail_price,
       g.IS_DELETED AS deleted,
       g.DISPLAY_ON_SITE AS display_on_site
FROM (SELECT x.GOOD_ID, MAX(x.CHANGED_AT) AS CHANGED_AT
      FROM (SELECT GOOD_ID, CHANGED_AT FROM GOOD_STOCK WHERE CHANGED_AT >= :changed_since
            UNION ALL
            SELECT GOOD_ID, CHANGED_AT FROM GOOD_PRICE WHERE CHANGED_AT >= :changed_since) x
      GROUP BY x.GOOD_ID) c
JOIN GOOD g ON g.GOOD_ID = c.GOOD_ID
LEFT JOIN GOOD_STOCK s ON s.GOOD_ID = c.GOOD_ID
LEFT JOIN GOOD_PRICE p0 ON p0.GOOD_ID = c.GOOD_ID AND p0.ACCOUNTING_CENTER_ID = 0
LEFT JOIN GOOD_PRICE pc ON pc.GOOD_ID = c.GOOD_ID AND pc.ACCOUNTING_CENTER_ID = :price_center
                       AND :price_center <> 0
ORDER BY c.GOOD_ID, s.ACCOUNTING_CENTER_ID
