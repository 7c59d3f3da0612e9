-- Service kinds for a Netlify site's deploys and a GitHub repository's workflow runs (their probes
-- judge failed and hung builds as the vercel kind does: a failed one is a decisive deploy_failed,
-- which retry_deploy then rollback_deploy act on), and for a Sentry project's errors (the new
-- issues of its latest release, its top issues with their share). Their own migration: a new enum
-- value cannot be used in the transaction that adds it, and the next migration stores the kinds'
-- config schemas.
alter type vigil.service_kind add value if not exists 'netlify';
alter type vigil.service_kind add value if not exists 'github_actions';
alter type vigil.service_kind add value if not exists 'sentry';
