-- A customer by e-mail (compared lower-cased).
-- params: :email
-- columns: id, name, phone, email, city, address
SELECT FIRST 1 c.ID AS id, c.NAME AS name, c.PHONE AS phone, c.EMAIL AS email, c.CITY AS city,
       c.ADDRESS AS address
FROM CLIENT c
WHERE LOWER(c.EMAIL) = :email
ORDER BY c.ID
