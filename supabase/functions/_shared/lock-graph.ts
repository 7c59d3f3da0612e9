// The lock graph, read the same way by the postgres probe (which reports it) and terminate_blocker
// (which acts on it): a session waits when pg_blocking_pids names blockers; its root blockers are
// those at the head of its chain, followed through blockers that wait themselves, cycles cut.

export interface LockNode {
  pid: number
  /** pg_blocking_pids(pid) for a session waiting on a lock; null or empty otherwise. */
  blocked_by: number[] | null
}

/** Whether this session waits on a lock. */
export function isWaiting(node: LockNode | undefined): boolean {
  return (node?.blocked_by?.length ?? 0) > 0
}

/** For a session of `nodes`, the root blockers of its chain, in pid order. */
export function rootBlockers(nodes: ReadonlyMap<number, LockNode>): (pid: number) => number[] {
  return (pid) => {
    const roots = new Set<number>()
    const seen = new Set<number>([pid])
    const stack = [...(nodes.get(pid)?.blocked_by ?? [])]
    while (stack.length > 0) {
      const b = stack.pop()!
      if (seen.has(b)) continue
      seen.add(b)
      const node = nodes.get(b)
      if (isWaiting(node)) stack.push(...node!.blocked_by!)
      else roots.add(b)
    }
    return [...roots].sort((x, y) => x - y)
  }
}
