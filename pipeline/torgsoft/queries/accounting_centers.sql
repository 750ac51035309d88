-- Accounting centers (stores, warehouses).
-- params: none
-- columns: id, name
-- optional columns: kind
SELECT ID AS id, NAME AS name, KIND AS kind
FROM ACCOUNTING_CENTER
ORDER BY ID
