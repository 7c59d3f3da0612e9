// Every alert channel and the Notifier that sends on it. `satisfies` makes a channel added to
// ALERT_CHANNELS without a Notifier here a type error, not an alert that silently goes nowhere.
import type { AlertChannel } from '../../../../shared/kinds.ts'
import { discord } from './channels/discord.ts'
import { email } from './channels/email.ts'
import { pagerduty } from './channels/pagerduty.ts'
import { slack } from './channels/slack.ts'
import { sms } from './channels/sms.ts'
import { webhook } from './channels/webhook.ts'
import type { Notifier } from './types.ts'

export const NOTIFIERS = {
  sms,
  email,
  slack,
  discord,
  pagerduty,
  webhook,
} satisfies Record<AlertChannel, Notifier>

export function notifierFor(channel: AlertChannel): Notifier {
  return NOTIFIERS[channel]
}
