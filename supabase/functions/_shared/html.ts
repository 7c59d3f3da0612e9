// The small HTML pages that links in alerts lead to (approve a heal, acknowledge an incident):
// never cached, never framed, no referrer, every value escaped.

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A page with a title and a body already escaped by the caller. */
export function htmlPage(status: number, title: string, body: string): Response {
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${
      escapeHtml(title)
    }</title>` +
    `<meta name="viewport" content="width=device-width"><style>body{font:16px/1.5 system-ui,sans-serif;` +
    `max-width:36rem;margin:2rem auto;padding:0 1rem}button{font-size:1.1rem;padding:.6rem 1.4rem}</style>` +
    `</head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`
  return new Response(html, {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    },
  })
}
