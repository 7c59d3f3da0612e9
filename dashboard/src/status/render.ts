// The public status page as a pure function from rows to HTML. Only what the public views expose:
// service name, status, 24 h uptime, and open incidents' public titles. Every value is escaped.

export interface PublicService {
  name: string
  status: string
  uptime_24h: number | string | null
}

export interface PublicIncident {
  service: string
  title: string
  opened_at: string
}

export type Overall = { level: 'ok' | 'degraded' | 'outage' | 'none'; icon: string; text: string }

const STATUS: Record<string, { icon: string; word: string }> = {
  healthy: { icon: '✅', word: 'Operational' },
  degraded: { icon: '⚠️', word: 'Degraded' },
  down: { icon: '❌', word: 'Down' },
  unknown: { icon: '❔', word: 'Unknown' },
}

export function escapeHtml(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** Major outage when any service is down; degraded when any is degraded; else all operational. */
export function overallStatus(services: readonly PublicService[]): Overall {
  if (services.length === 0) return { level: 'none', icon: '❔', text: 'No services are published yet' }
  if (services.some((s) => s.status === 'down')) return { level: 'outage', icon: '❌', text: 'Major outage' }
  if (services.some((s) => s.status === 'degraded'))
    return { level: 'degraded', icon: '⚠️', text: 'Some systems are degraded' }
  return { level: 'ok', icon: '✅', text: 'All systems operational' }
}

function uptime(v: PublicService['uptime_24h']): string {
  if (v == null || v === '') return 'No data'
  const n = Number(v)
  if (!Number.isFinite(n)) return 'No data'
  return `${n === 100 ? '100' : n.toFixed(2)} % uptime (24 h)`
}

function since(iso: string, now: number): string {
  const t = new Date(iso).getTime()
  if (Number.isNaN(t)) return ''
  const m = Math.max(0, Math.round((now - t) / 60000))
  if (m < 1) return 'just now'
  if (m < 60) return `${m} min ago`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ago`
  return `${Math.floor(h / 24)} d ago`
}

export function renderStatus(
  services: readonly PublicService[],
  incidents: readonly PublicIncident[],
  now: number = Date.now(),
): string {
  const overall = overallStatus(services)
  const rows = services
    .map((s) => {
      const st = STATUS[s.status] ?? STATUS.unknown!
      return (
        `<li class="svc status-${escapeHtml(st === STATUS.unknown ? 'unknown' : s.status)}">` +
        `<span class="name">${escapeHtml(s.name)}</span>` +
        `<span class="state"><span aria-hidden="true">${st.icon}</span> ${st.word}</span>` +
        `<span class="uptime">${uptime(s.uptime_24h)}</span></li>`
      )
    })
    .join('')
  const open = incidents
    .map(
      (i) =>
        `<li><strong>${escapeHtml(i.service)}</strong>: ${escapeHtml(i.title)} ` +
        `<time datetime="${escapeHtml(i.opened_at)}">since ${escapeHtml(since(i.opened_at, now))}</time></li>`,
    )
    .join('')
  return (
    `<h1>System status</h1>` +
    `<p class="overall overall-${overall.level}" role="status"><span aria-hidden="true">${overall.icon}</span> ${overall.text}</p>` +
    `<section aria-labelledby="services-h"><h2 id="services-h">Services</h2>` +
    (rows ? `<ul class="services">${rows}</ul>` : `<p>No services are published yet.</p>`) +
    `</section>` +
    `<section aria-labelledby="incidents-h"><h2 id="incidents-h">Open incidents</h2>` +
    (open ? `<ul class="incidents">${open}</ul>` : `<p>No open incidents.</p>`) +
    `</section>`
  )
}

export function renderError(message: string): string {
  return (
    `<h1>System status</h1>` +
    `<div class="error" role="alert"><p>The status could not be loaded: ${escapeHtml(message)}</p>` +
    `<button type="button" id="retry">Retry</button></div>`
  )
}
