-- A changed Satu order updates the Torgsoft order's header.
-- params: :client_id, :status, :is_paid, :payment_method, :delivery_condition, :delivery_address,
--     :ttn, :reserve_until, :comment, :total, :external_modified, :external_hash, :order_id
UPDATE CUSTOMER_ORDER
SET CLIENT_ID = :client_id, STATUS = :status, IS_PAID = :is_paid, PAYMENT_METHOD = :payment_method,
    DELIVERY_CONDITION = :delivery_condition, DELIVERY_ADDRESS = :delivery_address, TTN = :ttn,
    RESERVE_UNTIL = :reserve_until, COMMENT_TEXT = :comment, TOTAL = :total,
    EXTERNAL_MODIFIED = :external_modified, EXTERNAL_HASH = :external_hash, CHANGED_AT = CURRENT_TIMESTAMP
WHERE ID = :order_id
