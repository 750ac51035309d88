-- The stock watcher's idle read without a change query (`[torgsoft] change_query = false`): one row per
-- good with a number that changes whenever one of its stock rows (any center) or price rows changes.
-- Only two columns, so that a read of 100k goods stays cheap; the goods whose digest changed since the
-- last read are then read in full through stock_of_good.sql. Columns: good_id, digest (an integer).
-- MOD keeps each term small, so the SUM (order-independent) never overflows; CAST: the client reads BIGINT.
-- params: none
-- columns: good_id, digest
SELECT x.GOOD_ID AS good_id, CAST(SUM(x.H) AS BIGINT) AS digest
FROM (SELECT GOOD_ID, MOD(HASH(ACCOUNTING_CENTER_ID || ':' || QTY || ':' || RESERVED_QTY), 1000000007) AS H
      FROM GOOD_STOCK
      UNION ALL
      SELECT GOOD_ID, MOD(HASH('p' || ACCOUNTING_CENTER_ID || ':' || COALESCE(RETAIL_PRICE, '')), 1000000007)
      FROM GOOD_PRICE) x
GROUP BY x.GOOD_ID
