-- A service kind for log lines: the logs probe reads the cluster's log (locally) or the Management
-- API's logs endpoint (on Supabase) and matches each new line against vigil.log_patterns. Its own
-- migration: a new enum value cannot be used in the transaction that adds it.
alter type vigil.service_kind add value if not exists 'logs';
