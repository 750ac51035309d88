-- A new customer from an order.
-- params: :client_id, :name, :phone, :email, :city, :address
INSERT INTO CLIENT (ID, NAME, PHONE, EMAIL, CITY, ADDRESS, CREATED_AT, UPDATED_AT)
VALUES (:client_id, :name, :phone, :email, :city, :address, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)
