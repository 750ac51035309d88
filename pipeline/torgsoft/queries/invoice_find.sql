-- The invoice of an order, if any.
-- params: :order_id
-- columns: id
SELECT i.ID AS id FROM INVOICE i WHERE i.ORDER_ID = :order_id
