-- Demo only (`run.py demo`): a shop manager works on an order that came from Satu — accepts it,
-- marks it paid, ships it, or cancels it — as they would in the Torgsoft program. The status push
-- then finds the change through orders_for_status.sql.
-- :status is 0 new, 1 accepted, 2 shipped, 3 delivered, 4 cancelled; :is_paid 0/1; :source 'satu';
-- :external_id the Satu order id.
-- params: :status, :is_paid, :source, :external_id
UPDATE CUSTOMER_ORDER
SET STATUS = :status,
    IS_PAID = :is_paid,
    CHANGED_AT = CURRENT_TIMESTAMP
WHERE EXTERNAL_SOURCE = :source
  AND EXTERNAL_ID = :external_id
