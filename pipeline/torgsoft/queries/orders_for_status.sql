-- Orders that came from Satu, read by the status push (`status push`).
-- external_id is the Satu order id, status 0 new, 1 accepted, 2 shipped, 3 delivered, 4 cancelled,
-- is_paid 0/1, ttn the waybill number (empty or NULL = none), changed_at when the row last changed. With changed_at the push reads only rows changed since
-- its saved cursor (minus [status] overlap_minutes); without it, drop the column and the
-- :changed_since filter: every Satu order is then read each run and compared by a local hash.
-- :source is 'satu', :changed_since a timestamp (1900-01-01 on a full read).
-- params: :source, :changed_since
-- columns: external_id, status, is_paid, ttn
-- optional columns: changed_at
SELECT o.EXTERNAL_ID AS external_id,
       o.STATUS AS status,
       o.IS_PAID AS is_paid,
       o.TTN AS ttn,
       o.CHANGED_AT AS changed_at
FROM CUSTOMER_ORDER o
WHERE o.EXTERNAL_SOURCE = :source
  AND o.CHANGED_AT >= :changed_since
ORDER BY o.CHANGED_AT, o.ID
