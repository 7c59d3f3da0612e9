// Small text helpers every module uses for the sentences it writes (audit details, errors, alerts).

/** "1 session", "3 sessions". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** The sentence with its first letter in capitals. */
export function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1)
}
