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
            on conflict (seq) do nothing`
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
  const rows = await sql<{ seq: number; row_hash: string; mac: string; current: string | null }[]>`
    select a.seq::int, a.row_hash, a.mac, h.row_hash as current
      from (select * from vigil.audit_anchors order by seq desc limit ${newest}) a
      left join vigil.heal_actions h on h.seq = a.seq
     order by a.seq desc`
  for (const r of rows) {
    if (r.mac !== await anchorMac(secret, r.seq, r.row_hash)) {
      return {
        ok: false,
        seq: r.seq,
        problem: `the anchor of audit row ${r.seq} was not made with VIGIL_AUDIT_SECRET`,
      }
    }
    if (r.current === null) {
      return {
        ok: false,
        seq: r.seq,
        problem: `audit row ${r.seq} is gone, though it was anchored`,
      }
    }
    if (r.current !== r.row_hash) {
      return {
        ok: false,
        seq: r.seq,
        problem:
          `audit row ${r.seq} no longer has the hash it was anchored with: the chain was rewritten`,
      }
    }
  }
  return { ok: true, head: rows[0] ? { seq: rows[0].seq, mac: rows[0].mac } : null }
}
