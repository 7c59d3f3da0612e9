// demo-checkout: an edge function of the demo shop (not Vigil's: the local gateway serves it from
// demo/functions/ beside supabase/functions/). POST a cart, get its price:
//   {"items": [{"sku": "tea", "qty": 2}], "region": "EU"} → 200 {items, subtotal_cents, tax_cents, total_cents}
// It reads the shop's feature flags on every request from the file VIGIL_DEMO_FLAGS_FILE names
// (a stand-in for a remote flag service). The flag tax_v2 turns on a tax calculation with a bug:
// it throws on every cart, so the function answers 500 until a person turns the flag off — the
// chaos fault failing_edge_function. Dev tooling only: never deployed.

const PRICES_CENTS: Record<string, number> = { tea: 450, coffee: 520, cake: 380, bagel: 290 }
const VAT: Record<string, number> = { EU: 0.2, UK: 0.2, US: 0 }

interface Flags {
  tax_v2?: boolean
}

async function flags(): Promise<Flags> {
  const file = Deno.env.get('VIGIL_DEMO_FLAGS_FILE')
  if (!file) return {}
  try {
    return JSON.parse(await Deno.readTextFile(file)) as Flags
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {}
    throw error
  }
}

interface Line {
  sku: string
  qty: number
}

function readCart(body: unknown): { items: Line[]; region: string } | string {
  const cart = body as { items?: unknown; region?: unknown } | null
  if (!cart || typeof cart !== 'object' || !Array.isArray(cart.items) || !cart.items.length) {
    return 'items: must list at least one {sku, qty}'
  }
  const items: Line[] = []
  for (const item of cart.items as { sku?: unknown; qty?: unknown }[]) {
    if (typeof item?.sku !== 'string' || !(item.sku in PRICES_CENTS)) {
      return `items: unknown sku ${JSON.stringify(item?.sku)}`
    }
    if (!Number.isInteger(item.qty) || (item.qty as number) < 1 || (item.qty as number) > 99) {
      return 'items: qty must be a whole number from 1 to 99'
    }
    items.push({ sku: item.sku, qty: item.qty as number })
  }
  const region = cart.region ?? 'EU'
  if (typeof region !== 'string' || !(region in VAT)) return 'region: must be EU, UK or US'
  return { items, region }
}

/** Tax per line, rounded per line (the released calculation). */
function taxV1(items: Line[], region: string): number {
  return items.reduce((sum, l) => sum + Math.round(PRICES_CENTS[l.sku] * l.qty * VAT[region]), 0)
}

/** The new calculation behind tax_v2: it looks rates up by a field carts do not have. */
function taxV2(items: Line[]): number {
  const rates = { EU: { standard: 0.2 }, UK: { standard: 0.2 }, US: { standard: 0 } } as Record<
    string,
    { standard: number }
  >
  return items.reduce((sum, l) => {
    const line = l as Line & { taxRegion?: string }
    // The bug: every line lacks taxRegion, so this reads .standard of undefined and throws.
    return sum + Math.round(PRICES_CENTS[l.sku] * l.qty * rates[line.taxRegion!].standard)
  }, 0)
}

Deno.serve(async (request) => {
  if (request.method !== 'POST') {
    return Response.json({ error: 'method: POST a cart' }, { status: 405 })
  }
  let body: unknown
  try {
    body = await request.json()
  } catch {
    return Response.json({ error: 'body: must be JSON' }, { status: 400 })
  }
  const cart = readCart(body)
  if (typeof cart === 'string') return Response.json({ error: cart }, { status: 400 })
  const subtotal = cart.items.reduce((sum, l) => sum + PRICES_CENTS[l.sku] * l.qty, 0)
  // Uncaught on purpose when the flag is on: the runtime answers 500, as a deployed bug does.
  const tax = (await flags()).tax_v2 ? taxV2(cart.items) : taxV1(cart.items, cart.region)
  return Response.json({
    items: cart.items,
    region: cart.region,
    subtotal_cents: subtotal,
    tax_cents: tax,
    total_cents: subtotal + tax,
  })
})
