-- Demo only (`run.py demo`): what the order import created, for the demo's report.
-- :source is 'satu'.
-- params: :source
-- columns: clients, orders, reservations, invoices
SELECT (SELECT COUNT(*) FROM CLIENT) AS clients,
       (SELECT COUNT(*) FROM CUSTOMER_ORDER o WHERE o.EXTERNAL_SOURCE = :source) AS orders,
       (SELECT COUNT(*) FROM RESERVATION r JOIN CUSTOMER_ORDER o ON o.ID = r.ORDER_ID
         WHERE o.EXTERNAL_SOURCE = :source) AS reservations,
       (SELECT COUNT(*) FROM INVOICE i JOIN CUSTOMER_ORDER o ON o.ID = i.ORDER_ID
         WHERE o.EXTERNAL_SOURCE = :source) AS invoices
FROM RDB$DATABASE
