-- A new invoice id.
-- params: none
-- columns: id
SELECT NEXT VALUE FOR SEQ_INVOICE AS id FROM RDB$DATABASE
