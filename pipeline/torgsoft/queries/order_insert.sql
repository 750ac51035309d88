-- A remote customer order. The unique key (EXTERNAL_SOURCE, EXTERNAL_ID) makes a second insert of
-- the same Satu order fail, which the importer treats as "already there: update it".
-- params: :order_id, :doc_number, :doc_date, :center_id, :client_id, :status, :is_paid,
--     :payment_method, :delivery_condition, :delivery_address, :ttn, :reserve_until, :comment,
--     :total, :source, :external_id, :external_modified, :external_hash
INSERT INTO CUSTOMER_ORDER (ID, DOC_NUMBER, DOC_DATE, ACCOUNTING_CENTER_ID, CLIENT_ID, STATUS, IS_PAID,
                            PAYMENT_METHOD, DELIVERY_CONDITION, DELIVERY_ADDRESS, TTN, RESERVE_UNTIL,
                            COMMENT_TEXT, TOTAL, EXTERNAL_SOURCE, EXTERNAL_ID, EXTERNAL_MODIFIED,
                            EXTERNAL_HASH, CHANGED_AT)
VALUES (:order_id, :doc_number, :doc_date, :center_id, :client_id, :status, :is_paid,
        :payment_method, :delivery_condition, :delivery_address, :ttn, :reserve_until,
        :comment, :total, :source, :external_id, :external_modified, :external_hash, CURRENT_TIMESTAMP)
