-- Lock the order row for this transaction, so two importers update one order one after the other.
-- params: :order_id
-- columns: id
SELECT o.ID AS id FROM CUSTOMER_ORDER o WHERE o.ID = :order_id WITH LOCK
