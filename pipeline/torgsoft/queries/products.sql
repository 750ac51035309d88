-- Goods with their prices, one row per good, ordered by good_id (the reader merges stock, photos
-- and characteristics by good_id, so every query of the catalog must use the same order).
-- :price_center is the accounting center whose prices win over the common ones (0).
-- params: :price_center
-- columns: good_id, model_id, section_id, name, short_name, description_html, articul, barcode,
--     producer, country, unit, length_cm, width_cm, height_cm, weight_kg, production_date,
--     min_order_qty, wholesale_min_qty, display_on_site, deleted, retail_price, wholesale_price,
--     old_price
-- optional columns: description_text, keywords, changed_at
SELECT g.GOOD_ID AS good_id,
       g.MODEL_GOOD_ID AS model_id,
       g.SECTION_ID AS section_id,
       g.NAME AS name,
       g.SHORT_NAME AS short_name,
       -- The description comes as a VARCHAR when it fits (fetching a BLOB per row costs far more);
       -- longer ones come as the BLOB. The reader takes whichever is not NULL. An own mapping may
       -- simply return the column AS description_html and leave description_text out.
       CASE WHEN CHAR_LENGTH(g.DESCRIPTION_HTML) <= 8000
            THEN CAST(g.DESCRIPTION_HTML AS VARCHAR(8000)) END AS description_text,
       CASE WHEN CHAR_LENGTH(g.DESCRIPTION_HTML) > 8000 THEN g.DESCRIPTION_HTML END AS description_html,
       g.ARTICUL AS articul,
       g.BARCODE AS barcode,
       g.PRODUCER AS producer,
       g.COUNTRY AS country,
       g.MES_UNIT AS unit,
       g.KEYWORDS AS keywords,
       g.LENGTH_CM AS length_cm,
       g.WIDTH_CM AS width_cm,
       g.HEIGHT_CM AS height_cm,
       g.WEIGHT_KG AS weight_kg,
       g.PRODUCTION_DATE AS production_date,
       g.MIN_QTY_FOR_ORDER AS min_order_qty,
       g.WHOLESALE_MIN_QTY AS wholesale_min_qty,
       g.DISPLAY_ON_SITE AS display_on_site,
       g.IS_DELETED AS deleted,
       g.CHANGED_AT AS changed_at,
       COALESCE(pc.RETAIL_PRICE, p0.RETAIL_PRICE) AS retail_price,
       COALESCE(pc.WHOLESALE_PRICE, p0.WHOLESALE_PRICE) AS wholesale_price,
       COALESCE(pc.OLD_PRICE, p0.OLD_PRICE) AS old_price
FROM GOOD g
LEFT JOIN GOOD_PRICE p0 ON p0.GOOD_ID = g.GOOD_ID AND p0.ACCOUNTING_CENTER_ID = 0
LEFT JOIN GOOD_PRICE pc ON pc.GOOD_ID = g.GOOD_ID AND pc.ACCOUNTING_CENTER_ID = :price_center
                       AND :price_center <> 0
ORDER BY g.GOOD_ID
