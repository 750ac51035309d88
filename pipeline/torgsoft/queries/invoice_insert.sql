-- An invoice (sale) for an order; the unique ORDER_ID stops a second invoice for one order.
-- params: :invoice_id, :doc_number, :doc_date, :order_id, :client_id, :center_id, :total
INSERT INTO INVOICE (ID, DOC_NUMBER, DOC_DATE, ORDER_ID, CLIENT_ID, ACCOUNTING_CENTER_ID, TOTAL)
VALUES (:invoice_id, :doc_number, :doc_date, :order_id, :client_id, :center_id, :total)
