-- A new reservation id.
-- params: none
-- columns: id
SELECT NEXT VALUE FOR SEQ_RESERVATION AS id FROM RDB$DATABASE
