// Where the faults go: the running stack's database and demo, as the stack wrote them down when it
// started (<stateDir>/demo.json: local development values only, readable by this user alone).
import { join } from 'node:path'
import { z } from 'zod'
import { STATE_DIR } from '../../devstack/config.ts'
import { PG_BIN } from '../../devstack/db.ts'
import { DEMO_SECRET_NAMES } from '../seed.ts'
import type { ChaosTarget } from './types.ts'

const DemoFile = z.object({
  db_url: z.string().min(1),
  app_db_url: z.string().min(1),
  app: z.object({ url: z.url(), token: z.string().min(1) }),
  edge: z.object({ url: z.url(), zone_id: z.string().min(1), token: z.string().min(1) }),
  vercel: z.object({
    url: z.url(),
    control_token: z.string().min(1),
    deploy_hook_url: z.url(),
  }),
  // Optional: a stack started before the HTTPS edge and the demo's function has neither.
  tls: z.object({ url: z.url(), ca_file: z.string().min(1) }).optional(),
  functions: z.object({ flags_file: z.string().min(1) }).optional(),
})

export async function loadTarget(stateDir = Deno.env.get('VIGIL_STATE_DIR') ?? STATE_DIR) {
  const file = join(stateDir, 'demo.json')
  let raw: string
  try {
    raw = await Deno.readTextFile(file)
  } catch {
    throw new Error(
      `${file} is missing: start the local stack with its demo first (npm start, without --no-demo)`,
    )
  }
  const parsed = DemoFile.safeParse(JSON.parse(raw))
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => i.path.join('.')).join(', ')
    throw new Error(`${file} does not describe the demo (${where}): restart the stack`)
  }
  const target: ChaosTarget = {
    dbUrl: parsed.data.db_url,
    appDbUrl: parsed.data.app_db_url,
    stateDir,
    pgBin: PG_BIN,
    app: parsed.data.app,
    edge: {
      url: parsed.data.edge.url,
      zoneId: parsed.data.edge.zone_id,
      token: parsed.data.edge.token,
    },
    vercel: {
      url: parsed.data.vercel.url,
      controlToken: parsed.data.vercel.control_token,
      deployHookUrl: parsed.data.vercel.deploy_hook_url,
    },
    ...(parsed.data.tls && {
      tls: { url: parsed.data.tls.url, caFile: parsed.data.tls.ca_file },
    }),
    ...(parsed.data.functions && { functions: { flagsFile: parsed.data.functions.flags_file } }),
  }
  return target
}

/** The target of a demo this process started (tests, the chaos suite). */
export function targetOf(
  dbUrl: string,
  demo: {
    appDbUrl: string
    urls: { app: string; edge: string; vercel: string; https: string }
    credentials: { controlToken: string; zoneId: string; cloudflareToken: string }
    caFile: string
    flagsFile: string
    env(): Record<string, string>
  },
  stateDir: string,
): ChaosTarget {
  return {
    dbUrl,
    appDbUrl: demo.appDbUrl,
    stateDir,
    pgBin: PG_BIN,
    app: { url: demo.urls.app, token: demo.credentials.controlToken },
    edge: {
      url: demo.urls.edge,
      zoneId: demo.credentials.zoneId,
      token: demo.credentials.cloudflareToken,
    },
    vercel: {
      url: demo.urls.vercel,
      controlToken: demo.credentials.controlToken,
      deployHookUrl: demo.env()[DEMO_SECRET_NAMES.deployHookUrl],
    },
    tls: { url: demo.urls.https, caFile: demo.caFile },
    functions: { flagsFile: demo.flagsFile },
  }
}
