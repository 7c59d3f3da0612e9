// login_failed: Users cannot sign in: the configured refresh or restart (refresh_auth).
import type { FindingRule } from './types.ts'

export const loginFailed: FindingRule<'login_failed'> = {
  kind: 'login_failed',
  problem: (e) => ({
    kind: 'auth_failures',
    reason: `the synthetic sign-in failed: ${e.reason}`,
    evidence: { login_ok: false, error: e.reason },
  }),
}
