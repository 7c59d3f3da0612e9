// Other sessions' query text, made safe to keep: every literal (strings, dollar-quoted bodies,
// numbers, bit and hex strings) becomes $1, $2, … as pg_stat_statements shows statements, and
// comments are dropped (a comment is where people put what they should not). A tokenizer, not a
// parser: identifiers, keywords and the statement's shape are kept exactly; nothing is decided on
// the result, it is only shown and stored.

export function scrubQuery(text: string): string {
  let out = ''
  // New parameters follow the statement's own, as pg_stat_statements numbers them.
  let n = 0
  for (const m of text.matchAll(/\$(\d+)/g)) n = Math.max(n, Number(m[1]))
  const param = () => `$${++n}`
  let i = 0
  // Postgres identifiers (and dollar-quote tags) may hold any non-ASCII letter too.
  const isIdent = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c)
  while (i < text.length) {
    const c = text[i]
    const next = text[i + 1]
    // -- comment to the end of the line
    if (c === '-' && next === '-') {
      while (i < text.length && text[i] !== '\n') i++
      continue
    }
    // /* block comment */, nested as in Postgres
    if (c === '/' && next === '*') {
      let depth = 0
      while (i < text.length) {
        if (text[i] === '/' && text[i + 1] === '*') {
          depth++
          i += 2
        } else if (text[i] === '*' && text[i + 1] === '/') {
          depth--
          i += 2
          if (depth === 0) break
        } else i++
      }
      out += ' '
      continue
    }
    // "quoted identifier": kept
    if (c === '"') {
      const end = text.indexOf('"', i + 1)
      const stop = end < 0 ? text.length : end + 1
      out += text.slice(i, stop)
      i = stop
      continue
    }
    // 'string', E'string', B'bits', X'hex', N'national', U&'unicode'
    const prefix = isIdent(text[i - 1]) ? null : /^(?:[EeBbXxNn]|[Uu]&)'/.exec(text.slice(i, i + 3))
    if (c === "'" || prefix) {
      i += prefix ? prefix[0].length : 1
      const escapes = prefix !== null && /^[Ee]/.test(prefix[0])
      while (i < text.length) {
        if (escapes && text[i] === '\\') {
          i += 2
          continue
        }
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            i += 2
            continue
          }
          i++
          break
        }
        i++
      }
      out += param()
      continue
    }
    // $tag$ … $tag$ (a bare $1 is a parameter already: kept)
    if (c === '$' && !isIdent(text[i - 1])) {
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i))
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length)
        i = end < 0 ? text.length : end + tag[0].length
        out += param()
        continue
      }
    }
    // numbers not part of an identifier ($1 stays $1, t1 stays t1)
    if (/[0-9]/.test(c) && !isIdent(text[i - 1])) {
      const num = /^(?:0[xXoObB][0-9A-Fa-f_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)/.exec(
        text.slice(i),
      )!
      i += num[0].length
      out += param()
      continue
    }
    if (c === '.' && /[0-9]/.test(next ?? '') && !isIdent(text[i - 1])) {
      const num = /^\.\d+(?:[eE][+-]?\d+)?/.exec(text.slice(i))!
      i += num[0].length
      out += param()
      continue
    }
    out += c
    i++
  }
  return out.replace(/[ \t]+\n/g, '\n').trim()
}
