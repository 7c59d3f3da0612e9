// A dotenv reader for supabase/functions/.env: KEY=value lines, `#` comments, optional
// `export `, single quotes literal, double quotes with \n escapes. Dev tooling only.

const LINE = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/

/** The variables of a dotenv file; a missing file has none. */
export async function readDotenv(path: string): Promise<Record<string, string>> {
  try {
    return parseDotenv(await Deno.readTextFile(path))
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {}
    throw error
  }
}

export function parseDotenv(text: string): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    const match = LINE.exec(line)
    if (match) vars[match[1]] = parseValue(match[2])
  }
  return vars
}

function parseValue(raw: string): string {
  const quote = raw[0]
  if (quote === "'" || quote === '"') {
    const end = raw.indexOf(quote, 1)
    const inner = end === -1 ? raw.slice(1) : raw.slice(1, end)
    return quote === '"' ? inner.replaceAll('\\n', '\n') : inner
  }
  return raw.replace(/\s+#.*$/, '').trim()
}
