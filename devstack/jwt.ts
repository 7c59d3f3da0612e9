// HS256 JSON Web Tokens with jose: signing the local keys, and checking bearer tokens the way
// Supabase's gateway does. Dev tooling only: never deployed. Errors say why, in the few reasons the
// gateway's answers and tests rely on.
import { errors, jwtVerify, SignJWT } from 'jose'

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

const LOCAL_KEY_EXPIRY = 1983812996
const key = (secret: string) => new TextEncoder().encode(secret)

/** Header {alg, typ} and the payload as given, in its order: the local keys come out byte for byte. */
export async function signJwt(payload: JwtPayload, secret: string): Promise<string> {
  return await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(
    key(secret),
  )
}

/** Returns the payload of a valid token; throws a JwtError saying why it is not. */
export async function verifyJwt(token: string, secret: string): Promise<JwtPayload> {
  try {
    const { payload } = await jwtVerify(token, key(secret), { algorithms: ['HS256'] })
    return payload as JwtPayload
  } catch (error) {
    throw toJwtError(error)
  }
}

function toJwtError(error: unknown): JwtError {
  const message = error instanceof Error ? error.message : String(error)
  if (error instanceof errors.JWTExpired) return new JwtError('expired', 'token has expired')
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.claim === 'nbf'
      ? new JwtError('not_yet_valid', 'token is not valid yet')
      : new JwtError('malformed', message)
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return new JwtError('unsupported_alg', `${message}: only HS256 is accepted`)
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new JwtError('bad_signature', 'signature does not match')
  }
  return new JwtError('malformed', message)
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
