-- A new customer order id.
-- params: none
-- columns: id
SELECT NEXT VALUE FOR SEQ_CUSTOMER_ORDER AS id FROM RDB$DATABASE
