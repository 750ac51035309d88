-- A new customer id.
-- params: none
-- columns: id
SELECT NEXT VALUE FOR SEQ_CLIENT AS id FROM RDB$DATABASE
