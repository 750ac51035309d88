-- Accounting centers (stores, warehouses). Columns: id, name, kind.
SELECT ID AS id, NAME AS name, KIND AS kind
FROM ACCOUNTING_CENTER
ORDER BY ID
