-- Product photos, ordered by good_id then position (main photo first).
-- file_name: relative to [photos] source_dir, or an http(s) URL.
-- params: none
-- columns: good_id, pos, file_name
SELECT p.GOOD_ID AS good_id, p.POS AS pos, p.FILE_NAME AS file_name
FROM GOOD_PHOTO p
ORDER BY p.GOOD_ID, p.POS
