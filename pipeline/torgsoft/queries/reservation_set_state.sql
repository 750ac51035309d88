-- Release (2) or consume (3) a reservation.
UPDATE RESERVATION SET STATE = :state WHERE ID = :reservation_id
