-- A changed Satu order updates the Torgsoft order's header.
UPDATE CUSTOMER_ORDER
SET CLIENT_ID = :client_id, STATUS = :status, IS_PAID = :is_paid, PAYMENT_METHOD = :payment_method,
    DELIVERY_CONDITION = :delivery_condition, DELIVERY_ADDRESS = :delivery_address, TTN = :ttn,
    RESERVE_UNTIL = :reserve_until, COMMENT_TEXT = :comment, TOTAL = :total,
    EXTERNAL_MODIFIED = :external_modified, EXTERNAL_HASH = :external_hash, CHANGED_AT = CURRENT_TIMESTAMP
WHERE ID = :order_id
