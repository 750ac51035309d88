-- Refresh a known customer from a newer order (the importer keeps old values where the order has none).
UPDATE CLIENT
SET NAME = :name, PHONE = :phone, EMAIL = :email, CITY = :city, ADDRESS = :address, UPDATED_AT = CURRENT_TIMESTAMP
WHERE ID = :client_id
