-- The Torgsoft order imported from an external order, if any (exactly-once key: source + external id).
--
-- params: :source, :external_id
-- columns: id, status, is_paid, client_id, external_modified, external_hash
SELECT o.ID AS id, o.STATUS AS status, o.IS_PAID AS is_paid, o.CLIENT_ID AS client_id,
       o.EXTERNAL_MODIFIED AS external_modified, o.EXTERNAL_HASH AS external_hash
FROM CUSTOMER_ORDER o
WHERE o.EXTERNAL_SOURCE = :source AND o.EXTERNAL_ID = :external_id
