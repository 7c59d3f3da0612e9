// Signed links that let a human approve or reject a planned heal from an alert, without logging
// in: each link names one action and one decision, expires with the approval, and is signed with
// VIGIL_APPROVAL_SECRET (HMAC-SHA256), so it cannot be altered into another.
export type Decision = 'approved' | 'rejected'

async function key(secret: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    [
      'sign',
      'verify',
    ],
  )
}

/** `by`: the alert the link was sent in, so a decision names its recipient; signed with the rest. */
function message(
  actionId: string,
  decision: Decision,
  expires: number,
  by?: number,
): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(
    `${actionId}.${decision}.${expires}${by === undefined ? '' : `.by${by}`}`,
  )
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('')

export async function signApproval(
  actionId: string,
  decision: Decision,
  expires: number,
  secret: string,
  by?: number,
): Promise<string> {
  return hex(
    await crypto.subtle.sign('HMAC', await key(secret), message(actionId, decision, expires, by)),
  )
}

/** Constant-time: crypto.subtle.verify compares the whole signature. */
export async function verifyApproval(
  actionId: string,
  decision: Decision,
  expires: number,
  signature: string,
  secret: string,
  by?: number,
): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(signature)) return false
  const bytes: Uint8Array<ArrayBuffer> = new Uint8Array(
    signature.match(/../g)!.map((h) => parseInt(h, 16)),
  )
  return await crypto.subtle.verify(
    'HMAC',
    await key(secret),
    bytes,
    message(actionId, decision, expires, by),
  )
}

/** The approve and reject links for an action, valid until `expiresAt`. */
export async function approvalLinks(
  projectUrl: string,
  actionId: string,
  expiresAt: Date,
  secret: string,
  by?: number,
): Promise<Record<Decision, string>> {
  const expires = Math.floor(expiresAt.getTime() / 1000)
  const link = async (decision: Decision) => {
    const url = new URL(`${projectUrl.replace(/\/$/, '')}/functions/v1/heal-approval/${actionId}`)
    url.searchParams.set('decision', decision)
    url.searchParams.set('expires', String(expires))
    if (by !== undefined) url.searchParams.set('by', String(by))
    url.searchParams.set('sig', await signApproval(actionId, decision, expires, secret, by))
    return url.href
  }
  return { approved: await link('approved'), rejected: await link('rejected') }
}
