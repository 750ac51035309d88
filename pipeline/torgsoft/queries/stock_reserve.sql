-- Add (or, negative, give back) reserved quantity; never below zero.
-- params: :qty, :good_id, :center_id
UPDATE GOOD_STOCK
SET RESERVED_QTY = MAXVALUE(RESERVED_QTY + :qty, 0), CHANGED_AT = CURRENT_TIMESTAMP
WHERE GOOD_ID = :good_id AND ACCOUNTING_CENTER_ID = :center_id
