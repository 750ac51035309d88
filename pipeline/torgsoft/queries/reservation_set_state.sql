-- Release (2) or consume (3) a reservation.
-- params: :state, :reservation_id
UPDATE RESERVATION SET STATE = :state WHERE ID = :reservation_id
