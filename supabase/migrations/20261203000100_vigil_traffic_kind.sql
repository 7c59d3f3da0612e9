-- A service kind for the project's real traffic, read from the Management API's logs endpoint: the
-- API's 5xx share, p95 and throughput per endpoint, edge functions' failures and resource limits,
-- Auth's token success rate, row-level security refusals and the top errors with their share. Its
-- own migration: a new enum value cannot be used in the transaction that adds it, and the next
-- migration stores the kind's config schema.
alter type vigil.service_kind add value if not exists 'traffic';
