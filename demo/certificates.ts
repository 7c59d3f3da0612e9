// The demo's certificate authority and the server certificates it issues, made at run time with
// openssl (nothing with a private key is committed): a local CA the stack's functions are told to
// trust (DENO_CERT), and leaf certificates for 127.0.0.1 and localhost valid for as many days as
// asked — 90 as an ACME client renews them, a few for the near-expiry fault. Every file is this
// user's alone (0600, in a 0700 folder). Dev tooling only: never deployed.
import { join } from 'node:path'

const OPENSSL = '/usr/bin/openssl'
const CA_DAYS = 3650
const LEAF_EXTENSIONS = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
].join('\n') + '\n'

export interface Issued {
  cert: string
  key: string
  notAfter: Date
}

export interface CertificateAuthority {
  /** The CA certificate (PEM): what a client trusts to accept what it issues. */
  caFile: string
  caPem: string
  /** A fresh key and a certificate for 127.0.0.1/localhost that expires in `days` days. */
  issue(days: number): Promise<Issued>
}

async function openssl(dir: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(OPENSSL, {
    args,
    cwd: dir,
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split('\n').slice(-3).join('; ')
    throw new Error(`openssl ${args[0]} failed: ${err}`)
  }
  return new TextDecoder().decode(out.stdout)
}

/** openssl req: a new P-256 key, unencrypted. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'] as const

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false)
}

/** Reads the CA in `dir`, or makes one; the folder is created 0700. */
export async function certificateAuthority(dir: string): Promise<CertificateAuthority> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 })
  await Deno.chmod(dir, 0o700)
  const caFile = join(dir, 'ca.pem')
  const caKey = join(dir, 'ca.key')
  if (!(await exists(caFile)) || !(await exists(caKey))) {
    await openssl(
      dir,
      'req',
      '-x509',
      ...NEW_EC_KEY,
      '-subj',
      '/O=Vigil demo/CN=Vigil demo local CA',
      '-days',
      String(CA_DAYS),
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      caKey,
      '-out',
      caFile,
    )
  }
  for (const f of [caFile, caKey]) await Deno.chmod(f, 0o600)
  await Deno.writeTextFile(join(dir, 'leaf.ext'), LEAF_EXTENSIONS, { mode: 0o600 })
  const caPem = await Deno.readTextFile(caFile)
  let issuing = Promise.resolve() as Promise<unknown>

  const issueNow = async (days: number): Promise<Issued> => {
    const serial = `0x${
      crypto.getRandomValues(new Uint8Array(12)).reduce(
        (s, b) => s + b.toString(16).padStart(2, '0'),
        '',
      )
    }`
    await openssl(
      dir,
      'req',
      '-new',
      ...NEW_EC_KEY,
      '-subj',
      '/O=Vigil demo/CN=127.0.0.1',
      '-keyout',
      'leaf.key.new',
      '-out',
      'leaf.csr',
    )
    await Deno.chmod(join(dir, 'leaf.key.new'), 0o600)
    await openssl(
      dir,
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      caFile,
      '-CAkey',
      caKey,
      '-set_serial',
      serial,
      '-days',
      String(days),
      '-extfile',
      'leaf.ext',
      '-out',
      'leaf.pem.new',
    )
    await Deno.chmod(join(dir, 'leaf.pem.new'), 0o600)
    // Swapped in whole: a reader never sees a key of one certificate beside another's.
    await Deno.rename(join(dir, 'leaf.key.new'), join(dir, 'leaf.key'))
    await Deno.rename(join(dir, 'leaf.pem.new'), join(dir, 'leaf.pem'))
    await Deno.remove(join(dir, 'leaf.csr')).catch(() => {})
    const cert = await Deno.readTextFile(join(dir, 'leaf.pem'))
    const key = await Deno.readTextFile(join(dir, 'leaf.key'))
    return { cert, key, notAfter: await notAfterOf(dir, 'leaf.pem') }
  }

  return {
    caFile,
    caPem,
    issue(days) {
      // One issuance at a time: they share the folder's file names.
      const next = issuing.then(() => issueNow(days), () => issueNow(days))
      issuing = next.catch(() => {})
      return next
    },
  }
}

/** A certificate file's notAfter, as openssl reads it. */
async function notAfterOf(dir: string, file: string): Promise<Date> {
  const out = await openssl(dir, 'x509', '-noout', '-enddate', '-in', file)
  const date = new Date(out.trim().replace(/^notAfter=/, ''))
  if (Number.isNaN(date.getTime())) throw new Error(`openssl gave no notAfter for ${file}`)
  return date
}
