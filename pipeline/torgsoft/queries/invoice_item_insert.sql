-- One invoice line.
-- params: :invoice_id, :line_no, :good_id, :qty, :price
INSERT INTO INVOICE_ITEM (INVOICE_ID, LINE_NO, GOOD_ID, QTY, PRICE)
VALUES (:invoice_id, :line_no, :good_id, :qty, :price)
