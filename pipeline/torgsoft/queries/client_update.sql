-- Refresh a known customer from a newer order (the importer keeps old values where the order has none).
-- params: :name, :phone, :email, :city, :address, :client_id
UPDATE CLIENT
SET NAME = :name, PHONE = :phone, EMAIL = :email, CITY = :city, ADDRESS = :address, UPDATED_AT = CURRENT_TIMESTAMP
WHERE ID = :client_id
