// certificate_expiring: The certificate expires soon: the renewal hook (renew_certificate).
import type { FindingRule } from './types.ts'

export const certificateExpiring: FindingRule<'certificate_expiring'> = {
  kind: 'certificate_expiring',
  problem: (e) => ({
    kind: 'certificate_expiring',
    reason: `the TLS certificate expires in ${e.days_left} days`,
    evidence: { tls_days_left: e.days_left },
  }),
}
