-- A heal that did not act because its plan was refused (only a human can resolve it: a protected
-- blocker, nothing it may touch, an invalid action) or could not be made. Its own outcome, so the
-- circuit breaker and the rate limit, which count only heals that acted, never count it. Added on
-- its own: a new enum value cannot be used in the transaction that adds it.
alter type vigil.heal_outcome add value if not exists 'refused' after 'failed';
