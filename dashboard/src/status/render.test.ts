import { describe, expect, it } from 'vitest'
import { escapeHtml, overallStatus, renderError, renderStatus } from './render'

const NOW = Date.parse('2026-12-02T12:00:00Z')

function dom(html: string) {
  const main = document.createElement('main')
  main.innerHTML = html
  return main
}

describe('public status page', () => {
  it('picks the overall banner from the worst status', () => {
    expect(overallStatus([{ name: 'a', status: 'healthy', uptime_24h: 100 }]).text).toBe('All systems operational')
    expect(overallStatus([{ name: 'a', status: 'healthy', uptime_24h: 100 }, { name: 'b', status: 'degraded', uptime_24h: 99 }]).text).toBe(
      'Some systems are degraded',
    )
    expect(overallStatus([{ name: 'a', status: 'degraded', uptime_24h: 1 }, { name: 'b', status: 'down', uptime_24h: 0 }]).text).toBe('Major outage')
    expect(overallStatus([]).level).toBe('none')
  })

  it('renders each service with icon, word and 24 h uptime, and open incidents', () => {
    const main = dom(
      renderStatus(
        [
          { name: 'api', status: 'healthy', uptime_24h: '99.987' },
          { name: 'db', status: 'down', uptime_24h: 91.5 },
          { name: 'new', status: 'unknown', uptime_24h: null },
        ],
        [{ service: 'db', title: 'Outage', opened_at: '2026-12-02T11:45:00Z' }],
        NOW,
      ),
    )
    expect(main.querySelector('.overall')?.textContent).toBe('❌ Major outage')
    const rows = [...main.querySelectorAll('.services li')].map((li) => li.textContent)
    expect(rows).toEqual(['api✅ Operational99.99 % uptime (24 h)', 'db❌ Down91.50 % uptime (24 h)', 'new❔ UnknownNo data'])
    expect(main.querySelector('.incidents li')?.textContent).toBe('db: Outage since 15 min ago')
  })

  it('escapes every value it did not write itself', () => {
    const main = dom(
      renderStatus(
        [{ name: '<img src=x onerror=alert(1)>', status: '"><script>', uptime_24h: 100 }],
        [{ service: '<b>svc</b>', title: '<i>t</i>', opened_at: '"><x' }],
        NOW,
      ),
    )
    expect(main.querySelector('img, script, b, i, x')).toBeNull()
    expect(main.querySelector('.services .name')?.textContent).toBe('<img src=x onerror=alert(1)>')
    expect(main.querySelector('.services li')?.className).toBe('svc status-unknown')
    expect(main.querySelector('.incidents li')?.textContent).toContain('<b>svc</b>: <i>t</i>')
    expect(escapeHtml(`<>&"'`)).toBe('&#60;&#62;&#38;&#34;&#39;')
  })

  it('says when nothing is open and renders an error with Retry', () => {
    const main = dom(renderStatus([{ name: 'a', status: 'healthy', uptime_24h: 100 }], [], NOW))
    expect(main.textContent).toContain('No open incidents.')
    const err = dom(renderError('HTTP 500 <x>'))
    expect(err.querySelector('[role=alert]')?.textContent).toContain('HTTP 500 <x>')
    expect(err.querySelector('button#retry')?.textContent).toBe('Retry')
  })
})
