// HS256 JSON Web Tokens over WebCrypto, enough to sign the local keys and check bearer tokens
// the way Supabase's gateway does. Dev tooling only: never deployed.

export type JwtPayload = Record<string, unknown> & { exp?: number; nbf?: number }

export type JwtErrorReason =
  | 'malformed'
  | 'unsupported_alg'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'

export class JwtError extends Error {
  constructor(readonly reason: JwtErrorReason, message: string) {
    super(message)
    this.name = 'JwtError'
  }
}

const HEADER = { alg: 'HS256', typ: 'JWT' }
const LOCAL_KEY_EXPIRY = 1983812996

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export async function signJwt(payload: JwtPayload, secret: string): Promise<string> {
  const signingInput = `${encodeJson(HEADER)}.${encodeJson(payload)}`
  const signature = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(secret),
    encoder.encode(signingInput),
  )
  return `${signingInput}.${base64UrlEncode(new Uint8Array(signature))}`
}

/** Returns the payload of a valid token; throws a JwtError saying why it is not. */
export async function verifyJwt(token: string, secret: string): Promise<JwtPayload> {
  const parts = token.split('.')
  if (parts.length !== 3 || parts.some((part) => part === '')) {
    throw new JwtError('malformed', 'token must have three non-empty dot-separated parts')
  }
  const [encodedHeader, encodedPayload, encodedSignature] = parts
  const header = decodeJsonObject(encodedHeader, 'header')
  if (header.alg !== 'HS256') {
    throw new JwtError(
      'unsupported_alg',
      `alg ${JSON.stringify(header.alg)} is not accepted, only HS256`,
    )
  }
  const signature = base64UrlDecode(encodedSignature, 'signature')
  const signingInput = encoder.encode(`${encodedHeader}.${encodedPayload}`)
  // subtle.verify compares in constant time, unlike comparing re-signed strings.
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(secret), signature, signingInput)
  if (!valid) throw new JwtError('bad_signature', 'signature does not match')
  const payload = decodeJsonObject(encodedPayload, 'payload') as JwtPayload
  checkTimeClaims(payload, Math.floor(Date.now() / 1000))
  return payload
}

/** The anon and service_role keys of `supabase start`, when signed with its local secret. */
export async function localKeys(secret: string): Promise<{ anon: string; service_role: string }> {
  const [anon, service_role] = await Promise.all(
    (['anon', 'service_role'] as const).map((role) =>
      signJwt({ iss: 'supabase-demo', role, exp: LOCAL_KEY_EXPIRY }, secret)
    ),
  )
  return { anon, service_role }
}

function checkTimeClaims(payload: JwtPayload, nowSeconds: number): void {
  for (const claim of ['exp', 'nbf'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number') {
      throw new JwtError('malformed', `${claim} must be a number`)
    }
  }
  if (payload.exp !== undefined && nowSeconds >= payload.exp) {
    throw new JwtError('expired', 'token has expired')
  }
  if (payload.nbf !== undefined && nowSeconds < payload.nbf) {
    throw new JwtError('not_yet_valid', 'token is not valid yet')
  }
}

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  )
}

function encodeJson(value: unknown): string {
  return base64UrlEncode(encoder.encode(JSON.stringify(value)))
}

function decodeJsonObject(encoded: string, part: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(base64UrlDecode(encoded, part)))
  } catch (error) {
    if (error instanceof JwtError) throw error
    throw new JwtError('malformed', `${part} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JwtError('malformed', `${part} is not a JSON object`)
  }
  return value as Record<string, unknown>
}

function base64UrlEncode(bytes: Uint8Array): string {
  const binary = Array.from(bytes, (byte) => String.fromCharCode(byte)).join('')
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function base64UrlDecode(encoded: string, part: string): Uint8Array<ArrayBuffer> {
  // atob alone would accept '+', '/' and padding; a token has none of them.
  if (!/^[A-Za-z0-9_-]+$/.test(encoded) || encoded.length % 4 === 1) {
    throw new JwtError('malformed', `${part} is not base64url`)
  }
  const binary = atob(encoded.replaceAll('-', '+').replaceAll('_', '/'))
  return Uint8Array.from(binary, (char) => char.charCodeAt(0))
}
