-- An invoice sells goods: the quantity goes down, and the reserved part it consumed is no longer reserved.
-- params: :qty, :reserved_qty, :good_id, :center_id
UPDATE GOOD_STOCK
SET QTY = QTY - :qty, RESERVED_QTY = MAXVALUE(RESERVED_QTY - :reserved_qty, 0), CHANGED_AT = CURRENT_TIMESTAMP
WHERE GOOD_ID = :good_id AND ACCOUNTING_CENTER_ID = :center_id
