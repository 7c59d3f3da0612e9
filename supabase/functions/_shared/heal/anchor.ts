// Anchors of the heal audit: HMAC-SHA256, keyed with VIGIL_AUDIT_SECRET (which the database never
// sees), over each audit row's seq and hash. Whoever can write the database can rewrite the chain
// and recompute every hash after an edit; they cannot remake the anchors. The newest anchor also
// leaves with the dead man's switch ping, an outside record that removing the newest rows contradicts.
import type postgres from 'postgres'
import { hmacSha256, toHex } from '../hmac.ts'

export async function anchorMac(secret: string, seq: number, rowHash: string): Promise<string> {
  return toHex(await hmacSha256(secret, `vigil-audit.${seq}.${rowHash}`))
}

/** Anchors one audit row (its seq and hash as the chain trigger set them). */
export async function anchor(
  sql: postgres.Sql,
  secret: string,
  seq: number,
  rowHash: string,
): Promise<void> {
  const mac = await anchorMac(secret, seq, rowHash)
  await sql`insert into vigil.audit_anchors (seq, row_hash, mac) values (${seq}, ${rowHash}, ${mac})
            on conflict do nothing`
}

export type AnchorCheck =
  | { ok: true; head: { seq: number; mac: string } | null }
  | { ok: false; seq: number; problem: string }

/**
 * Checks the newest anchors against the key and the chain: each MAC must be the key's, and the
 * audit row at its seq must still carry the hash it anchored.
 */
export async function checkAnchors(
  sql: postgres.Sql,
  secret: string,
  newest = 50,
): Promise<AnchorCheck> {
  // Only anchors this key made count: one nobody could have made proves nothing (a bogus row, or
  // one from a key since rotated), and must not stop the check. seq is read as text: it is bigint.
  const rows = await sql<
    {
      seq: string
      row_hash: string
      mac: string
      current: string | null
      content_ok: boolean | null
      link_ok: boolean | null
    }[]
  >`
    select a.seq::text, a.row_hash, a.mac, h.row_hash as current,
           h.row_hash = vigil.heal_action_hash(h) as content_ok,
           h.prev_hash is not distinct from (select p.row_hash from vigil.heal_actions p where p.seq = h.seq - 1) as link_ok
      from (select * from vigil.audit_anchors order by seq desc limit ${newest * 4}) a
      left join vigil.heal_actions h on h.seq = a.seq
     order by a.seq desc`
  let head: { seq: number; mac: string } | null = null
  let checked = 0
  for (const r of rows) {
    const seq = Number(r.seq)
    if (r.mac !== await anchorMac(secret, seq, r.row_hash)) continue
    head ??= { seq, mac: r.mac }
    if (r.current === null) {
      return { ok: false, seq, problem: `audit row ${seq} is gone, though it was anchored` }
    }
    if (r.current !== r.row_hash) {
      return {
        ok: false,
        seq,
        problem:
          `audit row ${seq} no longer has the hash it was anchored with: the chain was rewritten`,
      }
    }
    if (!r.content_ok) {
      return { ok: false, seq, problem: `audit row ${seq} was changed after it was written` }
    }
    if (!r.link_ok) {
      return { ok: false, seq, problem: `the row before audit row ${seq} was changed or removed` }
    }
    if (++checked >= newest) break
  }
  return { ok: true, head }
}
