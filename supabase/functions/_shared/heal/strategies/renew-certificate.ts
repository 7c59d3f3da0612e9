// renew_certificate: a certificate close to expiry is renewed through the operator's endpoint
// (an ACME client, a control plane) named in actions.certificate_renewal; the re-probe reads the
// served certificate's days to expiry, and the heal helped when they grew.
import { z } from 'zod'
import { callWebhook, shown } from '../providers/webhook.ts'
import type { Strategy } from '../types.ts'
import {
  actionOf,
  afterOf,
  describeLast,
  healthyJustNow,
  probeNow,
  refuseDryRun,
  reprobeUntil,
  requireAction,
  timing,
} from '../external.ts'

export const RenewCertificateConfig = z.strictObject({ ...timing })
export type RenewCertificateConfig = z.infer<typeof RenewCertificateConfig>

const days = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

export const renewCertificateStrategy: Strategy<RenewCertificateConfig> = {
  name: 'renew_certificate',
  irreversible: 'a renewed certificate replaces the old one, which is not kept',
  problem: 'certificate_expiring',
  config: RenewCertificateConfig,

  async plan(problem, ctx) {
    const renewal = actionOf(ctx, 'certificate_renewal')
    if (!renewal) return null
    // The certificate served now: renewed meanwhile (healthy again), there is nothing to do now,
    // and the incident resolves with the next checks.
    const live = await probeNow(ctx)
    if (live?.status === 'healthy' && days(live.measurements.tls_days_left) !== null) {
      throw healthyJustNow(ctx)
    }
    const left = days(live?.measurements.tls_days_left) ?? days(problem.evidence.tls_days_left)
    return {
      action: 'renew_certificate',
      target: { url: shown(renewal.url) },
      reason: `the TLS certificate of ${ctx.service.name} ${
        left === null ? 'is close to expiry' : `expires in ${left} days`
      }: ask for a renewal`,
      before: { tls_days_left: left },
    }
  },

  async act(_plan, ctx, config) {
    refuseDryRun(ctx, `renew the certificate of ${ctx.service.name}`)
    const renewal = requireAction(ctx, 'certificate_renewal')
    await callWebhook(
      ctx,
      renewal,
      'the certificate renewal endpoint',
      'renew_certificate',
      config.request_timeout_ms,
    )
    return {
      detail: `the certificate renewal endpoint (${shown(renewal.url)}) accepted the request`,
    }
  },

  async verify(plan, _result, ctx, config) {
    const before = days(plan.before.tls_days_left)
    const r = await reprobeUntil(ctx, config, (p) => {
      const now = days(p.measurements.tls_days_left)
      return now !== null && (before === null || now > before)
    })
    const after = days(r.last?.measurements.tls_days_left)
    return {
      improved: r.done,
      worse: false,
      after: afterOf(r, ['tls_days_left', 'tls_expires_at']),
      detail: r.done
        ? `the certificate now expires in ${after} days (was ${before ?? 'unknown'})`
        : `the certificate still expires in ${after ?? 'an unknown number of'} days: ${
          describeLast(r)
        }`,
    }
  },
}
