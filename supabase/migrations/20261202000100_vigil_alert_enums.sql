-- New enum values for alert delivery, alone in their migration: a value added by ALTER TYPE cannot
-- be used in the transaction that adds it.
--   webhook: a generic channel, a signed JSON POST to the operator's own endpoint.
--   team:    a contact that hears every page and notice (a team's Slack channel, a webhook bridge)
--            without being the one held responsible for it.
alter type vigil.alert_channel add value if not exists 'webhook';
alter type vigil.contact_role add value if not exists 'team';
