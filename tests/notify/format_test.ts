// The words of alerts: the shape of each event's message, SMS in 160 GSM-7 characters, Discord in
// 2000, and outside text (service names, error messages) kept from injecting mentions or markup.
import assert from 'node:assert/strict'
import { discordContent } from '../../supabase/functions/_shared/notify/channels/discord.ts'
import { emailContent } from '../../supabase/functions/_shared/notify/channels/email.ts'
import {
  eventAction,
  pagerDutyEvent,
} from '../../supabase/functions/_shared/notify/channels/pagerduty.ts'
import { slackPayload } from '../../supabase/functions/_shared/notify/channels/slack.ts'
import { webhookAlert } from '../../supabase/functions/_shared/notify/channels/webhook.ts'
import {
  clean,
  emailSubject,
  gsm,
  PLAIN,
  renderMessage,
  smsLength,
  smsText,
  utcTime,
} from '../../supabase/functions/_shared/notify/format.ts'
import type { AlertView } from '../../supabase/functions/_shared/notify/types.ts'
import { humanDuration as duration } from '../../shared/durations.ts'
import { ACK_LINK, DASHBOARD_LINK, many, page } from './_alerts.ts'

const firstLine = (alert: AlertView) => renderMessage([alert], PLAIN).split('\n')[0]

/** Three alerts for one contact: api (newest), auth, db (oldest). */
function trio(): AlertView[] {
  return [
    page({
      id: 1,
      service: 'db',
      title: 'db is degraded',
      createdAt: new Date('2026-01-01T03:18:00Z'),
    }),
    page({
      id: 3,
      service: 'api',
      title: 'api is down',
      links: { acknowledge: 'https://p.supabase.co/functions/v1/ack/3.x.y' },
      createdAt: new Date('2026-01-01T03:20:00Z'),
    }),
    page({
      id: 2,
      service: 'auth',
      title: 'auth is down',
      createdAt: new Date('2026-01-01T03:19:00Z'),
    }),
  ]
}

/** Outside text that tries every trick. */
const HOSTILE = {
  service: '<!channel>',
  title: '@everyone *pwned* <@U123> <!here> _x_',
  summary:
    '<script>alert(1)</script> [click](https://evil.example) `code` ~~strike~~ @here\n# heading',
}

Deno.test('a page reads as in the examples', () => {
  assert.equal(
    renderMessage([page()], PLAIN),
    [
      '🚨 P1 PROD api is down (since 03:12 UTC)',
      'Cause: connection refused on GET https://api.example.org/health',
      'Tried: restart_service failed (attempt 1 of 3); restart_service failed (attempt 2 of 3)',
      "Suggested: check the service's logs and its last deploy",
      'Also affected: auth, storage',
      `Acknowledge: ${ACK_LINK}   Dashboard: ${DASHBOARD_LINK}`,
    ].join('\n'),
  )
})

Deno.test('each event has its own first line', () => {
  const at = new Date('2026-01-01T03:26:00Z')
  assert.equal(
    firstLine(page({ event: 'reminder', createdAt: at })),
    '⏰ Still open, not acknowledged: P1 PROD api is down (since 03:12 UTC, 14 min ago)',
  )
  assert.equal(
    firstLine(page({ event: 'resolved', createdAt: at, links: {} })),
    '✅ Resolved: P1 PROD api is healthy again after 14 min',
  )
  assert.equal(
    firstLine(
      page({
        event: 'acknowledged',
        summary: 'api is down: acknowledged by Ana',
        acknowledgedBy: 'Ana',
        links: {},
      }),
    ),
    '👀 Acknowledged: P1 PROD api is down by Ana',
  )
  assert.equal(firstLine(page({ event: 'flapping' })), '🔁 Flapping: P1 PROD api is down')
  assert.equal(
    firstLine(page({ event: 'stable', title: 'api is stable' })),
    '🟢 Stable again: P1 PROD api is stable',
  )
  assert.equal(firstLine(page({ event: 'notice', priority: 'info' })), 'ℹ️ PROD api is down')
  assert.equal(firstLine(page({ priority: 'P3' })), '⚠️ P3 PROD api is down (since 03:12 UTC)')
  // A start on another day says which.
  assert.equal(
    firstLine(page({ since: new Date('2025-12-30T23:05:00Z') })),
    '🚨 P1 PROD api is down (since Dec 30 23:05 UTC)',
  )
})

Deno.test('several alerts: a count line, then one block each, newest first', () => {
  const text = renderMessage(trio(), PLAIN)
  const blocks = text.split('\n\n')
  assert.equal(blocks[0], '3 alerts')
  assert.deepEqual(
    blocks.slice(1).map((b) => b.split('\n')[0]),
    [
      '🚨 P1 PROD api is down (since 03:12 UTC)',
      '🚨 P1 PROD auth is down (since 03:12 UTC)',
      '🚨 P1 PROD db is degraded (since 03:12 UTC)',
    ],
  )
})

Deno.test('approval links come with the alert that asks for one', () => {
  const alert = page({
    links: {
      acknowledge: ACK_LINK,
      approve: 'https://p.supabase.co/functions/v1/heal-approval?d=approved',
      reject: 'https://p.supabase.co/functions/v1/heal-approval?d=rejected',
    },
  })
  assert.match(renderMessage([alert], PLAIN), /Approve: https:\/\/\S+approved {3}Reject: /)
  const buttons = (slackPayload([alert]).blocks as any[])[1].elements
  assert.deepEqual(buttons.map((b: any) => [b.text.text, b.style]), [
    ['Acknowledge', 'primary'],
    ['Approve', 'primary'],
    ['Reject', 'danger'],
  ])
})

// ---- why the alert came now ----

const REASON = 'not acknowledged within 15 min'

Deno.test('why: a line before the cause in every full format', () => {
  const alert = page({ reason: REASON })
  assert.deepEqual(renderMessage([alert], PLAIN).split('\n').slice(0, 3), [
    '🚨 P1 PROD api is down (since 03:12 UTC)',
    `Why: ${REASON}`,
    'Cause: connection refused on GET https://api.example.org/health',
  ])
  const { text, html } = emailContent([alert])
  assert.ok(text.includes(`\nWhy: ${REASON}\nCause: `), text)
  assert.ok(html.includes(`<strong>Why:</strong> ${REASON}<br>\n<strong>Cause:</strong>`), html)
  const section = (slackPayload([alert]).blocks as any[])[0].text.text
  assert.ok(section.includes(`\n*Why:* ${REASON}\n*Cause:*`), section)
  assert.ok(discordContent([alert]).includes(`\n**Why:** ${REASON}\n**Cause:**`))
  assert.equal(webhookAlert(alert).reason, REASON)
  assert.equal((pagerDutyEvent(alert, 'k').payload as any).custom_details.reason, REASON)

  // Unsaid, nothing: no line, null in the structured formats.
  assert.ok(!renderMessage([page()], PLAIN).includes('Why'))
  assert.equal(webhookAlert(page()).reason, null)
  assert.equal(webhookAlert(page({ reason: ' \n ' })).reason, null)
  assert.equal((pagerDutyEvent(page(), 'k').payload as any).custom_details.reason, null)

  // Before the cause too where the cause has no label.
  const resolved = renderMessage(
    [page({ event: 'resolved', reason: 'the check passed 3 times', summary: 'api answers again' })],
    PLAIN,
  ).split('\n')
  assert.deepEqual(resolved.slice(1, 3), ['Why: the check passed 3 times', 'api answers again'])
})

Deno.test('why: outside text, escaped like the rest and capped', () => {
  const hostile = page({ reason: `${HOSTILE.title} <script>x</script> ${'y'.repeat(400)}` })
  const why = renderMessage([hostile], PLAIN).split('\n')[1]
  assert.ok(why.startsWith('Why: @everyone'), why)
  assert.ok(why.length <= 'Why: '.length + 200, `${why.length}`)
  assert.ok(why.endsWith('…'))

  const slack = JSON.stringify(slackPayload([hostile]))
  for (const raw of ['<@U123>', '<!here>', '<script>']) assert.ok(!slack.includes(raw), raw)
  assert.ok(slack.includes('*Why:* @\u200beveryone'))
  const discord = discordContent([hostile])
  assert.ok(discord.includes('**Why:** @\u200beveryone \\*pwned\\* \\<@U123\\>'), discord)
  const { html } = emailContent([hostile])
  assert.ok(!html.includes('<script>'))
  assert.ok(html.includes('&#60;script&#62;x&#60;/script&#62;'))
  assert.ok(String(webhookAlert(hostile).reason).length <= 200)
  assert.ok(
    (pagerDutyEvent(hostile, 'k').payload as any).custom_details.reason.length <= 200,
  )
  // One line, whatever it held.
  const multiline = renderMessage([page({ reason: 'late\n# heading' })], PLAIN)
  assert.ok(multiline.includes('\nWhy: late # heading\n'), multiline)
})

Deno.test('sms: why comes only when everything else fits beside it', () => {
  const short = { acknowledge: 'https://vig.il/a/7' }
  const bare = {
    event: 'reminder' as const,
    tried: [],
    suggestion: null,
    affected: [],
    links: short,
    createdAt: new Date('2026-01-01T03:27:00Z'),
  }
  const text = smsText([page({ ...bare, reason: REASON })])
  assert.equal(
    text,
    'Still open: P1 PROD api down since 03:12Z: connection refused on GET ' +
      `https://api.example.org/health. Why: ${REASON}. Ack https://vig.il/a/7`,
  )
  assert.equal(smsLength(text), 160)
  // One character more and it goes, leaving the rest as it was.
  assert.equal(
    smsText([page({ ...bare, reason: `${REASON}s` })]),
    smsText([page(bare)]),
  )
  // It never takes the place of anything: what was tried, the typical page, a group.
  for (const links of [short, page().links]) {
    assert.equal(smsText([page({ links, reason: REASON })]), smsText([page({ links })]))
  }
  assert.equal(
    smsText(trio().map((a) => ({ ...a, reason: REASON }))),
    smsText(trio()),
  )
})

// ---- SMS ----

Deno.test('sms: a typical P1 page fits in 160 GSM-7 characters with its ack link', () => {
  const text = smsText([page()])
  assert.ok(smsLength(text) <= 160, `${smsLength(text)}: ${text}`)
  assert.ok(text.startsWith('P1 PROD api down since 03:12Z: connection refused'), text)
  assert.ok(text.endsWith(`Ack ${ACK_LINK}`), text)
  assert.equal(gsm(text), text, 'GSM-7 only: no emoji, no UCS-2')

  // With a short link there is room for what was tried.
  const short = smsText([page({ links: { acknowledge: 'https://vig.il/a/7' } })])
  assert.equal(
    short,
    'P1 PROD api down since 03:12Z: connection refused on GET https://api.example.org/health. ' +
      'Tried restart_service failed x2. Ack https://vig.il/a/7',
  )
})

Deno.test('sms: optional parts go first, the ack link never', () => {
  const long = `https://p.supabase.co/functions/v1/ack/${'x'.repeat(200)}`
  const text = smsText([page({ links: { acknowledge: long, dashboard: DASHBOARD_LINK } })])
  assert.ok(text.includes(long), 'the link stays whole')
  assert.ok(text.startsWith('P1 PROD api down since 03:12Z'), text)
  assert.ok(!text.includes('Dash'), 'the dashboard link goes before the core')

  const noLink = smsText([page({ links: {} })])
  assert.ok(smsLength(noLink) <= 160, noLink)
  assert.ok(noLink.includes('Tried restart_service failed x2'), noLink)
})

Deno.test('sms: a group names each alert, newest first, and acks the newest', () => {
  assert.equal(
    smsText(trio()),
    '3 alerts: api down, auth down, db degraded. Ack https://p.supabase.co/functions/v1/ack/3.x.y',
  )
  const crowd = smsText(many(30, (i) => ({ links: { acknowledge: `https://vig.il/a/${i}` } })))
  assert.ok(smsLength(crowd) <= 160, crowd)
  assert.match(
    crowd,
    /^30 alerts: svc-29 down, svc-28 down, .*, \+\d+ more\. Ack https:\/\/vig\.il\/a\/29$/,
  )
})

Deno.test('sms: other events, and text outside GSM-7', () => {
  const at = new Date('2026-01-01T03:26:00Z')
  assert.equal(
    smsText([
      page({
        event: 'resolved',
        createdAt: at,
        links: {},
        tried: [],
        affected: [],
        suggestion: null,
      }),
    ]),
    'Resolved: P1 PROD api healthy again after 14 min',
  )
  assert.equal(
    smsText([
      page({
        event: 'acknowledged',
        summary: 'api is down: acknowledged by Ana',
        acknowledgedBy: 'Ana',
        links: {},
        tried: [],
        affected: [],
        suggestion: null,
      }),
    ]),
    'Acked: P1 PROD api down by Ana',
  )
  const text = smsText([page({ title: '“api” is down 🔥', summary: 'timeout — 5 s…', links: {} })])
  assert.equal(gsm(text), text)
  assert.ok(text.startsWith('P1 PROD "api" down ? since 03:12Z: timeout - 5 s'), text)
  assert.equal(smsLength('a{b}'), 6, 'extension characters count twice')
})

// ---- chat ----

Deno.test('discord: forty long alerts still fit in 2000 characters, saying how many were left out', () => {
  const alerts = many(40, (i) => ({
    title: `svc-${i} is down: ${'a very long explanation '.repeat(8)}`,
    summary: `${'x'.repeat(480)} ${i}`,
    tried: Array.from({ length: 9 }, (_, k) => `restart_service failed (attempt ${k + 1} of 3)`),
  }))
  const content = discordContent(alerts)
  assert.ok(content.length <= 2000, `${content.length}`)
  assert.ok(
    content.startsWith('**40 alerts**\n\n**🚨 P1 PROD svc-39 is down'),
    content.slice(0, 80),
  )
  const left = Number(content.match(/…and (\d+) more alerts left out here$/)?.[1])
  const shown = content.split('\n\n').length - 2
  assert.equal(left + shown, 40)

  // One alert too long on its own is cut, not refused.
  const huge = discordContent([
    page({ summary: '*'.repeat(5000), tried: Array(50).fill('_'.repeat(200)) }),
  ])
  assert.ok(huge.length <= 2000, `${huge.length}`)
})

Deno.test('discord: outside text cannot mention anyone or add markup', () => {
  const content = discordContent([page(HOSTILE)])
  assert.ok(!/(?<!\\)<@/.test(content), 'no <@user> left unescaped')
  assert.ok(!/@(everyone|here)/.test(content), 'no bare @everyone or @here')
  assert.ok(content.includes('\\<@U123\\>'))
  assert.ok(content.includes('\\*pwned\\*'))
  assert.ok(content.includes('\\[click\\](https://evil.example)'))
  assert.ok(!content.includes('\n# heading'), 'a newline in outside text cannot start a heading')
})

Deno.test('slack: outside text cannot mention anyone or add markup', () => {
  const payload = slackPayload([page(HOSTILE)])
  const json = JSON.stringify(payload)
  for (const raw of ['<!channel>', '<@U123>', '<!here>', '<script>', '@everyone', '@here']) {
    assert.ok(!json.includes(raw), `${raw} left as is`)
  }
  assert.ok(json.includes('&lt;@U123&gt;'))
  const section = (payload.blocks as any[])[0]
  assert.equal(section.text.verbatim, true)
  assert.ok(!section.text.text.includes(' *pwned* '), 'markers are broken up')
  assert.ok(section.text.text.startsWith('*🚨 P1 PROD @\u200beveryone'))
})

Deno.test('slack: forty alerts stay within 50 blocks', () => {
  const payload = slackPayload(many(40))
  const blocks = payload.blocks as any[]
  assert.ok(blocks.length <= 50, `${blocks.length}`)
  assert.deepEqual(blocks[0], { type: 'header', text: { type: 'plain_text', text: '40 alerts' } })
  assert.match(blocks.at(-1).elements[0].text, /and 25 more not shown/)
})

// ---- email ----

Deno.test('email: subjects, and every value escaped in the HTML part', () => {
  assert.equal(emailSubject([page()]), '[P1][PROD] api is down')
  assert.equal(
    emailSubject(trio()),
    '[P1][PROD] 3 alerts: api is down, auth is down, db is degraded',
  )
  assert.equal(
    emailSubject([page({ priority: 'P2' }), page({ id: 9, priority: 'P0', environment: 'qa' })]),
    '[P0][PROD/QA] 2 alerts: api is down, api is down',
  )

  const { html, text } = emailContent([
    page({ ...HOSTILE, links: { dashboard: 'javascript:alert(1)', acknowledge: ACK_LINK } }),
  ])
  assert.ok(!html.includes('<script>'))
  assert.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'))
  assert.ok(!html.includes('javascript:'), 'only http(s) links are links')
  assert.ok(html.includes(`<a href="${ACK_LINK}">Acknowledge</a>`))
  assert.ok(text.includes('<script>'), 'the text part is text')
})

// ---- PagerDuty ----

Deno.test('pagerduty: action by event, severity by priority, summary within 1024', () => {
  assert.equal(eventAction(page()), 'trigger')
  assert.equal(eventAction(page({ event: 'reminder' })), 'trigger')
  assert.equal(eventAction(page({ event: 'notice' })), 'trigger')
  assert.equal(eventAction(page({ event: 'acknowledged' })), 'acknowledge')
  assert.equal(eventAction(page({ event: 'resolved' })), 'resolve')
  // Flapping opens an incident; stable, under the same dedup_key, closes it.
  assert.equal(eventAction(page({ event: 'flapping' })), 'trigger')
  assert.equal(eventAction(page({ event: 'stable' })), 'resolve')
  const stable = pagerDutyEvent(page({ event: 'stable', dedupKey: 'vigil-flapping-api' }), 'k')
  assert.deepEqual(
    [stable.event_action, stable.dedup_key, stable.payload],
    ['resolve', 'vigil-flapping-api', undefined],
  )
  const severity = (priority: AlertView['priority']) =>
    (pagerDutyEvent(page({ priority }), 'k').payload as any).severity
  assert.deepEqual(
    (['P0', 'P1', 'P2', 'P3', 'info'] as const).map(severity),
    ['critical', 'critical', 'error', 'warning', 'info'],
  )
  const big = pagerDutyEvent(page({ title: 't'.repeat(2000), summary: 's'.repeat(5000) }), 'k')
  assert.ok((big.payload as any).summary.length <= 1024)
  assert.equal(
    pagerDutyEvent(page({ service: null }), 'k').payload &&
      (pagerDutyEvent(page({ service: null }), 'k').payload as any).source,
    'vigil',
  )
})

Deno.test('pagerduty: a team’s service gets no approve or reject link', () => {
  const approve = 'https://p.supabase.co/functions/v1/heal-approval?d=approved'
  const reject = 'https://p.supabase.co/functions/v1/heal-approval?d=rejected'
  const event = pagerDutyEvent(
    page({ links: { acknowledge: ACK_LINK, approve, reject, dashboard: DASHBOARD_LINK } }),
    'k',
  )
  assert.deepEqual((event.links as any[]).map((l) => l.text), [
    'Acknowledge in Vigil',
    'Dashboard in Vigil',
  ])
  const onlyApproval = pagerDutyEvent(page({ links: { approve, reject } }), 'k')
  assert.equal(onlyApproval.links, undefined)
  assert.ok(!JSON.stringify(onlyApproval).includes('heal-approval'))
})

// ---- small parts ----

Deno.test('times in UTC, durations for humans, outside text on one clean line', () => {
  const ref = new Date('2026-03-04T10:00:00Z')
  assert.equal(utcTime(new Date('2026-03-04T03:12:40Z'), ref), '03:12 UTC')
  assert.equal(utcTime(new Date('2026-03-03T23:59:00Z'), ref, true), 'Mar 3 23:59Z')
  assert.equal(duration(40_000), '40 s')
  assert.equal(duration(14 * 60_000), '14 min')
  assert.equal(duration(125 * 60_000), '2 h 5 min')
  assert.equal(duration(120 * 60_000), '2 h')
  assert.equal(duration((3 * 24 + 4) * 3_600_000), '3 d 4 h')
  assert.equal(clean('api\u202e nwod si\n\tnow', 100), 'api nwod si now')
  assert.equal(clean('x'.repeat(20), 10), `${'x'.repeat(9)}…`)
})
