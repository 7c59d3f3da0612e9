// The public status page: two PostgREST reads with the anon key, no framework, no supabase-js.
import { loadConfig } from '../config'
import { renderError, renderStatus, type PublicIncident, type PublicService } from './render'
import './status.css'

const REFRESH_MS = 60_000

async function read<T>(base: string, anonKey: string, path: string): Promise<T> {
  const res = await fetch(`${base}/rest/v1/${path}`, {
    headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}`, 'Accept-Profile': 'vigil', Accept: 'application/json' },
  })
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  return (await res.json()) as T
}

async function show(root: HTMLElement) {
  const cfg = loadConfig()
  if (!cfg.ok) {
    root.innerHTML = renderError(`the page is not configured (missing ${cfg.missing.join(', ')})`)
    return
  }
  const { supabaseUrl, anonKey } = cfg.config
  root.setAttribute('aria-busy', 'true')
  try {
    const [services, incidents] = await Promise.all([
      read<PublicService[]>(supabaseUrl, anonKey, 'public_status?select=name,status,uptime_24h&order=name'),
      read<PublicIncident[]>(supabaseUrl, anonKey, 'public_incidents?select=service,title,opened_at&order=opened_at.desc'),
    ])
    root.innerHTML =
      renderStatus(services, incidents) +
      `<p class="updated">Updated ${new Date().toLocaleTimeString()}</p>`
  } catch (e) {
    root.innerHTML = renderError(e instanceof Error && /^HTTP/.test(e.message) ? e.message : 'the server could not be reached')
    root.querySelector('#retry')?.addEventListener('click', () => void show(root))
  } finally {
    root.setAttribute('aria-busy', 'false')
  }
}

const root = document.getElementById('app')
if (root) {
  void show(root)
  setInterval(() => {
    if (document.visibilityState === 'visible') void show(root)
  }, REFRESH_MS)
}
