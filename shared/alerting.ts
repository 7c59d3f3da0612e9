// Alert routing and noise control as data: the per-environment knobs in vigil.settings and the
// priority → channel routes in vigil.alert_routes. The same rules are CHECK constraints in
// supabase/migrations/20261202000200_vigil_alerting.sql; tests/schema/alerting_test.ts proves the
// defaults and the rules agree.
import { z } from 'zod'
import { ALERT_CHANNELS, ENVIRONMENTS } from './kinds.ts'

export const PRIORITIES = ['P0', 'P1', 'P2', 'P3', 'info'] as const
export type Priority = (typeof PRIORITIES)[number]

/** The column defaults of the alerting knobs in vigil.settings. */
export const DEFAULT_ALERT_SETTINGS = {
  alert_group_seconds: 30,
  alert_reminder_minutes: 30,
  alert_ack_escalate_minutes: 15,
  flap_threshold: 5,
  flap_window_minutes: 30,
  alert_retry_base_seconds: 5,
  alert_retry_max_seconds: 600,
  alert_give_up_hours: 24,
  ack_link_hours: 24,
  alert_urgent_fallback_minutes: 5,
} as const

const int = (min: number, max: number) => z.number().int().min(min).max(max)

const settingFields = {
  alert_group_seconds: int(0, 3600),
  alert_reminder_minutes: int(1, 1440),
  alert_ack_escalate_minutes: int(1, 1440),
  flap_threshold: int(2, 100),
  flap_window_minutes: int(1, 1440),
  alert_retry_base_seconds: int(1, 3600),
  alert_retry_max_seconds: int(1, 86_400),
  alert_give_up_hours: int(1, 168),
  ack_link_hours: int(1, 720),
  alert_urgent_fallback_minutes: int(1, 1440),
} satisfies Record<keyof typeof DEFAULT_ALERT_SETTINGS, z.ZodType<number>>

/** A complete set of alerting knobs, as one vigil.settings row holds. */
export const AlertSettings = z.strictObject(settingFields).refine(
  (s) => s.alert_retry_max_seconds >= s.alert_retry_base_seconds,
  { path: ['alert_retry_max_seconds'], message: 'must be at least alert_retry_base_seconds' },
)
export type AlertSettings = z.infer<typeof AlertSettings>

/** Overrides of the alerting knobs for one environment; unknown names are errors. */
export const AlertSettingOverrides = z.strictObject(settingFields).partial()

const Channel = z.enum(ALERT_CHANNELS)

/** One row of vigil.alert_routes. */
export const AlertRoute = z.strictObject({
  environment: z.enum(ENVIRONMENTS),
  priority: z.enum(PRIORITIES),
  channels: z.array(Channel).min(1).max(6),
  fallback: z.array(Channel).max(6).default([]),
  respect_quiet_hours: z.boolean(),
}).refine((r) => !(r.respect_quiet_hours && (r.priority === 'P0' || r.priority === 'P1')), {
  path: ['respect_quiet_hours'],
  message: 'P0 and P1 wake people up: they cannot wait for quiet hours to end',
})
export type AlertRoute = z.infer<typeof AlertRoute>

/** The routes every environment starts with. */
export const DEFAULT_ROUTES: Record<Priority, Omit<AlertRoute, 'environment' | 'priority'>> = {
  P0: {
    channels: ['sms', 'pagerduty'],
    fallback: ['email', 'slack', 'discord', 'webhook'],
    respect_quiet_hours: false,
  },
  P1: {
    channels: ['sms', 'pagerduty'],
    fallback: ['email', 'slack', 'discord', 'webhook'],
    respect_quiet_hours: false,
  },
  P2: {
    channels: ['email'],
    fallback: ['slack', 'discord', 'webhook', 'pagerduty'],
    respect_quiet_hours: true,
  },
  P3: { channels: ['email'], fallback: ['slack', 'discord', 'webhook'], respect_quiet_hours: true },
  info: { channels: ['slack', 'discord', 'webhook'], fallback: [], respect_quiet_hours: true },
}

/** P0 critical in prod, P1 critical elsewhere, P2 warning, P3 info (vigil.alert_priority in SQL). */
export function priorityOf(
  severity: 'info' | 'warning' | 'critical',
  environment: string,
): Priority {
  if (severity === 'critical') return environment === 'prod' ? 'P0' : 'P1'
  return severity === 'warning' ? 'P2' : 'P3'
}
