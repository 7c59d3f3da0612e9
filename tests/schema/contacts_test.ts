// The contact rules exist twice: vigil.contact_errors() enforces them at insert, shared/contacts.ts
// lets TypeScript (the dashboard, config as code) check a contact before it is sent. Both must
// accept and refuse the same contacts, naming the same fields in the same words.
import assert from 'node:assert/strict'
import { type Contact, contactErrors, parseContact } from '../../shared/contacts.ts'
import { testSql } from '../_env.ts'

const base = { name: 'Ana', role: 'on_call', environment: null, enabled: true } as const

const CASES: (Partial<Contact> & Pick<Contact, 'channel' | 'address'>)[] = [
  { channel: 'sms', address: '+15551234567' },
  { channel: 'sms', address: '555-1234' },
  { channel: 'sms', address: '+0123456789' },
  { channel: 'sms', address: '+15551234567', secret_name: 'TWILIO_X' },
  { channel: 'email', address: 'oncall@example.org' },
  { channel: 'email', address: 'Ana <ana@example.org>' },
  { channel: 'email', address: 'ana@localhost' },
  { channel: 'email', address: 'ana@example.org', secret_name: 'SENDGRID' },
  { channel: 'webhook', address: 'https://hooks.example.org/vigil', secret_name: 'VIGIL_HOOK_KEY' },
  { channel: 'webhook', address: 'http://127.0.0.1:8080/x?y=1', secret_name: 'K' },
  { channel: 'webhook', address: 'ftp://example.org/', secret_name: 'K' },
  { channel: 'webhook', address: 'https://example.org/' },
  { channel: 'slack', address: '#ops', secret_name: 'VIGIL_SLACK_OPS_URL' },
  { channel: 'slack', address: '#ops' },
  { channel: 'slack', address: '', secret_name: 'lower_case' },
  { channel: 'discord', address: 'ops', secret_name: 'SUPABASE_SERVICE_ROLE_KEY' },
  { channel: 'pagerduty', address: 'Ops service', secret_name: 'VIGIL_PD_KEY' },
  { channel: 'pagerduty', address: 'Ops service', secret_name: 'VIGIL_APPROVAL_SECRET' },
  { channel: 'slack', address: '#ops', secret_name: 'VIGIL_TWILIO_AUTH_TOKEN' },
  { channel: 'webhook', address: 'https://hooks.example.org/x', secret_name: 'VIGIL_AUDIT_SECRET' },
  { channel: 'webhook', address: 'https://hooks.example.org/x?api_token=abc', secret_name: 'K' },
  { channel: 'webhook', address: 'https://user:pw@hooks.example.org/x', secret_name: 'K' },
  { channel: 'webhook', address: 'https://hooks.example.org/x?team=ops', secret_name: 'K' },
  { channel: 'webhook', address: 'https://hooks.example.org/x?access_token=abc', secret_name: 'K' },
  {
    channel: 'webhook',
    address: 'https://hooks.example.org/x?apikey=abc&code=1',
    secret_name: 'K',
  },
  { channel: 'pagerduty', address: 'x'.repeat(321), secret_name: 'VIGIL_PD_KEY' },
  { name: '  ', channel: 'sms', address: '+15551234567' },
  { name: 'n'.repeat(101), channel: 'sms', address: '+15551234567' },
  {
    channel: 'email',
    address: 'a@example.org',
    quiet_hours: { start: '22:00', end: '07:00', timezone: 'Europe/Madrid' },
  },
  {
    channel: 'email',
    address: 'a@example.org',
    quiet_hours: { start: '24:00', end: '7:00', timezone: 'Mars/Olympus' },
  },
  {
    channel: 'email',
    address: 'a@example.org',
    quiet_hours: { start: '08:00', end: '08:00', timezone: 'UTC', mood: 1 },
  },
  { channel: 'email', address: 'a@example.org', quiet_hours: 'nights' },
  {
    channel: 'email',
    address: 'a@example.org',
    quiet_hours: { end: '07:00', timezone: 'America/Chicago' },
  },
]

Deno.test('shared/contacts.ts and vigil.contact_errors() agree on every case, field by field', async () => {
  const sql = testSql()
  try {
    for (const c of CASES) {
      const contact: Contact = { ...base, secret_name: null, quiet_hours: null, ...c } as Contact
      const [{ errors }] = await sql<{ errors: string[] }[]>`
        select to_jsonb(vigil.contact_errors(${contact.channel}::vigil.alert_channel, ${contact.address},
                 ${contact.secret_name}, ${
        contact.quiet_hours === null ? null : sql.json(contact.quiet_hours as never)
      },
                 ${contact.name})) as errors`
      assert.deepEqual(contactErrors(contact), errors, `${contact.channel} ${JSON.stringify(c)}`)
    }
  } finally {
    await sql.end()
  }
})

Deno.test('parseContact names the field of a wrong type and accepts a good contact with defaults', () => {
  const bad = parseContact({ name: 'Ana', role: 'boss', channel: 'pigeon', address: 7 })
  assert.equal(bad.ok, false)
  if (!bad.ok) {
    for (const field of ['role', 'channel', 'address']) {
      assert.ok(
        bad.errors.some((e) => e.startsWith(`${field}:`)),
        `${field} named in ${bad.errors}`,
      )
    }
  }
  const good = parseContact({
    name: 'Ana',
    role: 'team',
    channel: 'slack',
    address: '#ops',
    secret_name: 'SLACK_OPS',
  })
  assert.deepEqual(good, {
    ok: true,
    value: {
      name: 'Ana',
      role: 'team',
      channel: 'slack',
      address: '#ops',
      secret_name: 'SLACK_OPS',
      environment: null,
      quiet_hours: null,
      enabled: true,
    },
  })
})

Deno.test('the contacts table refuses a bad contact at insert, naming every wrong field', async () => {
  const sql = testSql()
  try {
    await assert.rejects(
      sql`insert into vigil.contacts (name, role, channel, address, secret_name)
          values ('t-contacts', 'on_call', 'sms', '12345', 'X')`,
      (e: Error) =>
        /invalid contact "t-contacts": address: must be a phone number.*; secret_name: must be empty for sms/
          .test(e.message),
    )
  } finally {
    await sql.end()
  }
})
