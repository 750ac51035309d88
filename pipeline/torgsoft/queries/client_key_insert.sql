-- Claim a normalised phone or e-mail for a customer created from an order. The primary key stops two
-- importers running at once from creating the same customer twice (the loser retries and finds it).
-- params: :kind, :key_value, :client_id
INSERT INTO CLIENT_EXTERNAL_KEY (KEY_KIND, KEY_VALUE, CLIENT_ID) VALUES (:kind, :key_value, :client_id)
