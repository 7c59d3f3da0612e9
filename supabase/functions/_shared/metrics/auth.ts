// Who may scrape /functions/v1/metrics: whoever holds the metrics token, as Prometheus sends it.
import { sameText } from '../hmac.ts'

/** Whether the Authorization header carries the token (Bearer, or Basic with it as password). */
export function authorized(header: string | null, token: string): boolean {
  if (!header) return false
  const [scheme, credentials = ''] = header.trim().split(/\s+/, 2)
  if (/^bearer$/i.test(scheme)) return sameText(credentials, token)
  if (/^basic$/i.test(scheme)) {
    let decoded: string
    try {
      decoded = new TextDecoder().decode(Uint8Array.from(atob(credentials), (c) => c.charCodeAt(0)))
    } catch {
      return false
    }
    const colon = decoded.indexOf(':')
    return colon >= 0 && sameText(decoded.slice(colon + 1), token)
  }
  return false
}
