// Where Vigil may send requests. Probe targets, heal provider URLs and alert webhooks come from
// rows and secrets; without a guard they could point Vigil at the cloud's metadata service, the
// database, or anything on the private network next to the function. Each request's host is
// resolved and every address checked first; loopback, link-local, private, unspecified and
// multicast addresses, and the database's own host, are refused unless the deployment allows them
// (VIGIL_ALLOW_PRIVATE_TARGETS=true: the local stack, where every stand-in is on loopback).
// Redirects are never followed blindly: every hop is a new request through the same guard.

export interface OutboundPolicy {
  allowPrivate: boolean
  /** Hosts refused by name and by address (the database's). */
  denyHosts?: string[]
  /** Addresses of a host name; defaults to DNS (A and AAAA). */
  resolve?: (host: string) => Promise<string[]>
  /**
   * Origins always allowed, whatever their address: only ones the deployment itself names (the
   * project's own SUPABASE_URL, which health-check calls to fan a cycle out), never a row's.
   */
  allowOrigins?: string[]
}

/** A request refused before it was sent. */
export class TargetRefused extends TypeError {
  constructor(readonly url: string, reason: string) {
    super(`refused to call ${url}: ${reason}`)
    this.name = 'TargetRefused'
  }
}

export type AddressClass =
  | 'public'
  | 'loopback'
  | 'link-local'
  | 'private'
  | 'unspecified'
  | 'multicast'
  | 'reserved'

function v4(ip: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip)
  if (!m) return null
  const parts = m.slice(1).map(Number)
  return parts.every((p) => p <= 255) ? parts : null
}

function classifyV4([a, b]: number[]): AddressClass {
  if (a === 0) return 'unspecified'
  if (a === 127) return 'loopback'
  if (a === 169 && b === 254) return 'link-local'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private'
  if (a === 100 && b >= 64 && b <= 127) return 'private' // carrier-grade NAT
  if (a === 198 && (b === 18 || b === 19)) return 'private'
  if (a >= 224 && a <= 239) return 'multicast'
  if (a >= 240) return 'reserved'
  return 'public'
}

/** The eight hextets of an IPv6 address (an embedded IPv4 tail counts as two), or null. */
function v6(ip: string): number[] | null {
  let text = ip
  const tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text)
  if (tail) {
    const four = v4(tail[1])
    if (!four) return null
    text = text.slice(0, -tail[1].length) +
      `${((four[0] << 8) | four[1]).toString(16)}:${((four[2] << 8) | four[3]).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const part = (h: string) => (h === '' ? [] : h.split(':'))
  const head = part(halves[0])
  const rest = halves.length === 2 ? part(halves[1]) : []
  const missing = 8 - head.length - rest.length
  if (halves.length === 1 ? head.length !== 8 : missing < 1) return null
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...rest]
  if (!all.every((h) => /^[0-9a-f]{1,4}$/.test(h))) return null
  return all.map((h) => parseInt(h, 16))
}

/** The kind of an IPv4 or IPv6 address (IPv4-mapped IPv6 is judged as the IPv4 it carries). */
export function classify(address: string): AddressClass {
  const ip = address.replace(/^\[|\]$/g, '').toLowerCase()
  const four = v4(ip)
  if (four) return classifyV4(four)
  const h = v6(ip)
  if (!h) return 'reserved'
  if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
    return classifyV4([h[6] >> 8, h[6] & 0xff, h[7] >> 8, h[7] & 0xff])
  }
  if (h.every((x) => x === 0)) return 'unspecified'
  if (h.slice(0, 7).every((x) => x === 0) && h[7] === 1) return 'loopback'
  const embedded = (hi: number, lo: number) => classifyV4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff])
  // Addresses that carry an IPv4 one reach it: IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96),
  // 6to4 (2002:AABB:CCDD::/48).
  if (h.slice(0, 6).every((x) => x === 0)) return embedded(h[6], h[7])
  if (h[0] === 0x64 && h[1] === 0xff9b && h.slice(2, 6).every((x) => x === 0)) {
    return embedded(h[6], h[7])
  }
  if (h[0] === 0x2002) return embedded(h[1], h[2])
  if ((h[0] & 0xffc0) === 0xfe80) return 'link-local'
  if ((h[0] & 0xfe00) === 0xfc00 || (h[0] & 0xffc0) === 0xfec0) return 'private' // unique local, site-local
  if ((h[0] & 0xff00) === 0xff00) return 'multicast'
  return 'public'
}

async function dns(host: string): Promise<string[]> {
  const settled = await Promise.allSettled([
    Deno.resolveDns(host, 'A'),
    Deno.resolveDns(host, 'AAAA'),
  ])
  return settled.flatMap((s) => (s.status === 'fulfilled' ? s.value : []))
}

const DENIED_FOR_MS = 60_000
const deniedCache = new WeakMap<OutboundPolicy, { at: number; addresses: Promise<Set<string>> }>()

/** The addresses of the denied hosts, resolved once a minute per policy, not once per request. */
function deniedAddresses(policy: OutboundPolicy): Promise<Set<string>> {
  if (!policy.denyHosts?.length) return Promise.resolve(new Set())
  const cached = deniedCache.get(policy)
  if (cached && Date.now() - cached.at < DENIED_FOR_MS) return cached.addresses
  const addresses = Promise.all(
    policy.denyHosts.map((h) => (policy.resolve ?? dns)(h).catch(() => [])),
  )
    .then((all) => new Set(all.flat()))
  deniedCache.set(policy, { at: Date.now(), addresses })
  return addresses
}

/** Why a request to `url` must not be sent, or null. */
export async function refusal(url: string | URL, policy: OutboundPolicy): Promise<string | null> {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return 'not a URL'
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `${u.protocol} is not http(s)`
  if (policy.allowPrivate || policy.allowOrigins?.includes(u.origin)) return null
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (policy.denyHosts?.some((h) => h.toLowerCase() === host)) {
    return `${host} is the database's host`
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is this machine`
  const addresses = v4(host) || host.includes(':') ? [host] : await (policy.resolve ?? dns)(host)
  if (addresses.length === 0) return `${host} does not resolve`
  const denied = await deniedAddresses(policy)
  for (const address of addresses) {
    if (denied.has(address)) return `${host} resolves to the database's address ${address}`
    const kind = classify(address)
    if (kind !== 'public') return `${host} resolves to a ${kind} address (${address})`
  }
  return null
}

/** A fetch that also says whether a URL may be reached, for connections fetch does not make (a websocket). */
export type GuardedFetch = typeof fetch & { checkTarget(url: string): Promise<string | null> }

/**
 * fetch, refusing what the policy refuses (a TargetRefused, before anything is sent). Redirects are
 * never followed here: each hop is a new request its caller makes, through this same check.
 */
export function guardedFetch(policy: OutboundPolicy, base: typeof fetch = fetch): GuardedFetch {
  const guarded = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input)
    const why = await refusal(url, policy)
    if (why) throw new TargetRefused(new URL(url).origin, why)
    return await base(input, { ...init, redirect: 'manual' })
  }
  return Object.assign(guarded, {
    checkTarget: (url: string) => refusal(url, policy),
  }) as GuardedFetch
}

/** Why a connection to `url` (ws, wss, http, https) must not be made, when `f` is a guarded fetch. */
export async function targetRefusal(f: typeof fetch, url: string): Promise<string | null> {
  const check = (f as Partial<GuardedFetch>).checkTarget
  return check ? await check(url.replace(/^ws(s?):/i, 'http$1:')) : null
}

/** The deployment's policy: VIGIL_ALLOW_PRIVATE_TARGETS, and the database's host from its URL. */
export function policyFromEnv(get: (name: string) => string | undefined): OutboundPolicy {
  const denyHosts: string[] = []
  for (const name of ['SUPABASE_DB_URL', 'VIGIL_DB_URL']) {
    try {
      const host = new URL(get(name) ?? '').hostname
      if (host) denyHosts.push(host)
    } catch {
      // unset or not a URL: nothing to deny by name
    }
  }
  return { allowPrivate: get('VIGIL_ALLOW_PRIVATE_TARGETS') === 'true', denyHosts }
}
