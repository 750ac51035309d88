-- Characteristic values per good, ordered by good_id.
-- dynamic: 1 = a dynamic characteristic.
-- params: none
-- columns: good_id, name, unit, dynamic, value
SELECT gc.GOOD_ID AS good_id,
       c.NAME AS name,
       c.UNIT AS unit,
       c.IS_DYNAMIC AS dynamic,
       gc.VAL AS "value"
FROM GOOD_CHARACTERISTIC gc
JOIN CHARACTERISTIC c ON c.ID = gc.CHARACTERISTIC_ID
ORDER BY gc.GOOD_ID, c.ID
