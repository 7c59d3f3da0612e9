-- A service kind for a Vercel project's deployments: the vercel probe reads the newest ones and
-- finds a failed build (deploy_failed, which retry_deploy then rollback_deploy act on) or a build
-- that hangs. Its own migration: a new enum value cannot be used in the transaction that adds it,
-- and the next migration stores the kind's config schema.
alter type vigil.service_kind add value if not exists 'vercel';
