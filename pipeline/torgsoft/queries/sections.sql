-- Synchronization sections (the website category tree) with group texts and section image.
-- parent_id: NULL or 0 for a root.
-- params: none
-- columns: id, parent_id, name, text_before, text_after, image_file
SELECT ID AS id,
       PARENT_ID AS parent_id,
       NAME AS name,
       TEXT_BEFORE AS text_before,
       TEXT_AFTER AS text_after,
       IMAGE_FILE AS image_file
FROM SYNC_SECTION
ORDER BY ID
