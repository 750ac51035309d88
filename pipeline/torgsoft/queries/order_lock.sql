-- Lock the order row for this transaction, so two importers update one order one after the other.
SELECT o.ID AS id FROM CUSTOMER_ORDER o WHERE o.ID = :order_id WITH LOCK
