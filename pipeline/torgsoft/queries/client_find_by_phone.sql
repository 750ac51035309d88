-- A customer by normalised phone (digits, country code 7).
-- params: :phone
-- columns: id, name, phone, email, city, address
SELECT FIRST 1 c.ID AS id, c.NAME AS name, c.PHONE AS phone, c.EMAIL AS email, c.CITY AS city,
       c.ADDRESS AS address
FROM CLIENT c
WHERE c.PHONE = :phone
ORDER BY c.ID
