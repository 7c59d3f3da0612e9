// A row of vigil.contacts: one way to reach someone (rows with the same name are one person). The
// same rules are vigil.contact_errors() in SQL, enforced at insert; tests/schema/contacts_test.ts
// proves both sides accept and refuse the same contacts, with the same field named.
import { z } from 'zod'
import { ALERT_CHANNELS, type AlertChannel, CONTACT_ROLES, ENVIRONMENTS } from './kinds.ts'

const TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]$/
const PHONE = /^\+[1-9][0-9]{6,14}$/
const EMAIL = /^[^@\s<>(),;:"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$/
const URL_ = /^https?:\/\/[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(\/[^\s]*)?$/
const SECRET = /^[A-Z][A-Z0-9_]{0,127}$/
/** Vigil's own secrets: a contact naming one would send it to whoever the contact points at. */
const OWN_SECRET =
  /^VIGIL_(APPROVAL_SECRET|AUDIT_SECRET|DB_URL|TWILIO_|SENDGRID_|PAGERDUTY_API_URL|PUBLIC_URL|DASHBOARD_URL|ACK_PAGE_URL|DEADMAN_URL|ALLOW_PRIVATE_TARGETS)/
const CREDENTIAL_QUERY = /[?&][^=&#]*(token|key|secret|sig|password|auth|code)[^=&#]*=/i

/** What each channel's secret holds, for messages. */
const HOLDS: Partial<Record<AlertChannel, string>> = {
  slack: 'the incoming webhook URL',
  discord: 'the incoming webhook URL',
  pagerduty: 'the routing key',
  webhook: 'the signing key',
}

export const ContactInput = z.object({
  name: z.string(),
  role: z.enum(CONTACT_ROLES),
  channel: z.enum(ALERT_CHANNELS),
  address: z.string(),
  secret_name: z.string().nullable().default(null),
  environment: z.enum(ENVIRONMENTS).nullable().default(null),
  quiet_hours: z.unknown().nullable().default(null),
  enabled: z.boolean().default(true),
})
export type ContactInput = z.input<typeof ContactInput>
export type Contact = z.output<typeof ContactInput>

/** Whether `tz` is an IANA time zone this runtime knows. */
function knownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return tz.length > 0
  } catch {
    return false
  }
}

/** Every problem with a contact, each naming its field, in the words SQL uses. */
export function contactErrors(c: Contact): string[] {
  const errors: string[] = []
  if (c.name.trim().length === 0 || c.name.length > 100) {
    errors.push('name: must be 1 to 100 characters')
  }
  const a = c.address
  if (c.channel === 'sms' && !PHONE.test(a)) {
    errors.push('address: must be a phone number in E.164 form, like +15551234567')
  } else if (c.channel === 'email' && (a.length > 254 || !EMAIL.test(a))) {
    errors.push('address: must be an email address, like oncall@example.org')
  } else if (c.channel === 'webhook' && (a.length > 2048 || !URL_.test(a))) {
    errors.push('address: must be an http(s) URL')
  } else if (c.channel === 'webhook' && CREDENTIAL_QUERY.test(a)) {
    errors.push(
      'address: must not carry a credential in its query (the signing key is the secret_name)',
    )
  } else if (
    (c.channel === 'slack' || c.channel === 'discord' || c.channel === 'pagerduty') &&
    (a.length < 1 || a.length > 320)
  ) {
    errors.push('address: must be a label of 1 to 320 characters (the secret holds the credential)')
  }

  const holds = HOLDS[c.channel]
  if (holds && c.secret_name === null) {
    errors.push(`secret_name: required for ${c.channel} (the secret holding ${holds})`)
  } else if (!holds && c.secret_name !== null) {
    const family = c.channel === 'sms' ? 'TWILIO' : 'SENDGRID'
    errors.push(
      `secret_name: must be empty for ${c.channel} (it uses the project's VIGIL_${family}_* secrets)`,
    )
  }
  if (c.secret_name !== null) {
    if (!SECRET.test(c.secret_name)) {
      errors.push('secret_name: must name an environment variable (A-Z, 0-9, _)')
    } else if (c.secret_name.startsWith('SUPABASE_')) {
      errors.push("secret_name: must not be one of the project's SUPABASE_ keys")
    } else if (OWN_SECRET.test(c.secret_name)) {
      errors.push(
        "secret_name: must not be one of Vigil's own secrets (signing keys, provider credentials)",
      )
    }
  }

  const q = c.quiet_hours
  if (q !== null) {
    if (typeof q !== 'object' || Array.isArray(q)) {
      errors.push('quiet_hours: must be an object with start, end and timezone')
    } else {
      const o = q as Record<string, unknown>
      for (const k of ['start', 'end'] as const) {
        if (typeof o[k] !== 'string' || !TIME.test(o[k] as string)) {
          errors.push(`quiet_hours.${k}: must be a time of day, HH:MM`)
        }
      }
      if (o.start !== undefined && o.start === o.end) {
        errors.push('quiet_hours.end: must differ from start')
      }
      if (typeof o.timezone !== 'string' || !knownTimeZone(o.timezone)) {
        errors.push('quiet_hours.timezone: must be an IANA time zone, like Europe/Madrid')
      }
      for (const k of Object.keys(o)) {
        if (!['start', 'end', 'timezone'].includes(k)) {
          errors.push(`quiet_hours.${k}: unknown field (allowed: end, start, timezone)`)
        }
      }
    }
  }
  return errors
}

/** A contact parsed and checked, or every problem with it. */
export function parseContact(
  input: unknown,
): { ok: true; value: Contact } | { ok: false; errors: string[] } {
  const parsed = ContactInput.safeParse(input)
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((i) => `${i.path.join('.') || 'contact'}: ${i.message}`),
    }
  }
  const errors = contactErrors(parsed.data)
  return errors.length ? { ok: false, errors } : { ok: true, value: parsed.data }
}
