-- A good by its article (the Satu sku), lowest GoodID first.
-- params: :center_id, :articul
-- columns: good_id, retail_price, wholesale_price
SELECT FIRST 1 g.GOOD_ID AS good_id,
       COALESCE(pc.RETAIL_PRICE, p0.RETAIL_PRICE) AS retail_price,
       COALESCE(pc.WHOLESALE_PRICE, p0.WHOLESALE_PRICE) AS wholesale_price
FROM GOOD g
LEFT JOIN GOOD_PRICE p0 ON p0.GOOD_ID = g.GOOD_ID AND p0.ACCOUNTING_CENTER_ID = 0
LEFT JOIN GOOD_PRICE pc ON pc.GOOD_ID = g.GOOD_ID AND pc.ACCOUNTING_CENTER_ID = :center_id
WHERE g.ARTICUL = :articul
ORDER BY g.IS_DELETED, g.GOOD_ID
