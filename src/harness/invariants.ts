/**
 * Invariants of a sledlog cluster, checked over what each node returns from GET /v1/events.
 *
 * Pure functions: they take the logs (and optionally acknowledged appends and statuses) and
 * return a list of violations as human-readable strings instead of throwing, so a test can
 * print all of them at once and the `sledlog harness` command can report them.
 */

/** The fields of an entry the invariants look at (a subset of the API's stored entry). */
export interface LogEntry {
  readonly sled: string
  readonly seq: number
  readonly sig: string
  /** Set by the node when it holds two signed versions of this (sled, seq). */
  readonly equivocated?: true
}

/** One node's full log, as read in (sled, seq) order. */
export interface NodeLog {
  /** Name of the node in messages, e.g. `"node 2"`. */
  readonly node: string
  readonly entries: readonly LogEntry[]
}

/** An append the API answered with 201: it must never be lost or replaced. */
export interface AckedAppend {
  readonly sled: string
  readonly seq: number
  readonly sig: string
  /** Name of the node that acknowledged it. */
  readonly node?: string
}

/** The parts of a node's /v1/status the invariants look at. */
export interface NodeStatusLike {
  readonly node: string
  readonly equivocations?: readonly unknown[]
  readonly writeFailed?: string | null
  readonly ownHeadBehind?: unknown
  readonly missing?: Readonly<Record<string, unknown>>
}

/** What to check (see {@link checkInvariants}). */
export interface InvariantInput {
  readonly logs: readonly NodeLog[]
  /** Acknowledged appends. Each must be held, with its signature, by every node in `logs` when
   * `converged`; otherwise by the node that acknowledged it, if that node is among `logs`. */
  readonly acked?: readonly AckedAppend[]
  readonly statuses?: readonly NodeStatusLike[]
  /** The nodes are expected to hold identical logs (after a quiet period). */
  readonly converged?: boolean
}

/** Most violations reported per check, so one broken node does not bury the rest. */
const MAX_PER_CHECK = 20

const short = (s: string): string => s.slice(0, 12)

function key(e: { sled: string; seq: number }): string {
  return `${e.sled}:${e.seq}`
}

function capped(out: string[], limit = MAX_PER_CHECK): (v: string) => void {
  let n = 0
  return (v) => {
    n++
    if (n <= limit) out.push(v)
    else if (n === limit + 1) out.push('… (more violations of this kind left out)')
  }
}

/**
 * One node's log on its own: (sled, seq) order, no duplicate (sled, seq), each sled's seqs
 * contiguous from 0, and no equivocation flag.
 */
export function checkLogShape(log: NodeLog): string[] {
  const out: string[] = []
  const report = capped(out)
  let prev: LogEntry | undefined
  for (const e of log.entries) {
    if (prev !== undefined) {
      if (e.sled === prev.sled && e.seq === prev.seq) report(`${log.node}: duplicate entry ${short(e.sled)}:${e.seq}`)
      else if (e.sled < prev.sled || (e.sled === prev.sled && e.seq < prev.seq)) {
        report(`${log.node}: out of order: ${short(e.sled)}:${e.seq} after ${short(prev.sled)}:${prev.seq}`)
      }
    }
    const expected = prev !== undefined && prev.sled === e.sled ? prev.seq + 1 : 0
    if (e.seq !== expected && !(prev !== undefined && prev.sled === e.sled && prev.seq === e.seq)) {
      report(`${log.node}: sled ${short(e.sled)} seq ${e.seq} where ${expected} was expected (seqs must be contiguous from 0)`)
    }
    if (e.equivocated === true) report(`${log.node}: ${short(e.sled)}:${e.seq} is equivocated (two signed versions)`)
    prev = e
  }
  return out
}

/** Across nodes: every (sled, seq) held by several nodes has the same signature everywhere. */
export function checkSigAgreement(logs: readonly NodeLog[]): string[] {
  const out: string[] = []
  const report = capped(out)
  const seen = new Map<string, { sig: string; node: string }>()
  for (const log of logs) {
    for (const e of log.entries) {
      const k = key(e)
      const first = seen.get(k)
      if (first === undefined) seen.set(k, { sig: e.sig, node: log.node })
      else if (first.sig !== e.sig) {
        report(`${short(e.sled)}:${e.seq} differs: ${first.node} holds sig ${short(first.sig)}…, ${log.node} holds ${short(e.sig)}…`)
      }
    }
  }
  return out
}

/**
 * Acknowledged appends: no node holds a different entry at an acknowledged (sled, seq) (a
 * reused seq), and each is present where it must be: on every node when `converged`, else on
 * the node that acknowledged it.
 */
export function checkAcked(logs: readonly NodeLog[], acked: readonly AckedAppend[], converged: boolean): string[] {
  const out: string[] = []
  const reportMissing = capped(out)
  const reportReplaced = capped(out)
  const reportTwice = capped(out)
  const ackedAt = new Map<string, AckedAppend>()
  for (const a of acked) {
    const prior = ackedAt.get(key(a))
    if (prior !== undefined && prior.sig !== a.sig) {
      reportTwice(`${short(a.sled)}:${a.seq} was acknowledged twice with different entries (${prior.node ?? '?'} and ${a.node ?? '?'}): a reused seq`)
    }
    ackedAt.set(key(a), a)
  }
  for (const log of logs) {
    const held = new Map<string, string>()
    for (const e of log.entries) held.set(key(e), e.sig)
    for (const a of acked) {
      const sig = held.get(key(a))
      if (sig !== undefined && sig !== a.sig) {
        reportReplaced(`${log.node}: holds a different entry at acknowledged ${short(a.sled)}:${a.seq} (sig ${short(sig)}…, acknowledged ${short(a.sig)}…)`)
      }
      const required = converged || a.node === log.node
      if (required && sig === undefined) {
        reportMissing(`${log.node}: lacks acknowledged ${short(a.sled)}:${a.seq}${a.node === undefined ? '' : ` (acknowledged by ${a.node})`}`)
      }
    }
  }
  return out
}

/**
 * Number of nodes whose log differs from the first node's (0 when all are identical). Logs are
 * compared as sorted lists of (sled, seq, sig); the signature covers the whole entry.
 */
export function divergence(logs: readonly NodeLog[]): number {
  const [first, ...rest] = logs
  if (first === undefined) return 0
  const fp = fingerprint(first)
  return rest.filter((l) => fingerprint(l) !== fp).length
}

function fingerprint(log: NodeLog): string {
  return [...log.entries]
    .map((e) => `${e.sled}:${String(e.seq).padStart(12, '0')}:${e.sig}`)
    .sort()
    .join('\n')
}

/** Converged: every node holds the same sorted log; names what differs from the first node. */
export function checkConverged(logs: readonly NodeLog[]): string[] {
  const out: string[] = []
  const [first, ...rest] = logs
  if (first === undefined) return out
  const base = new Map(first.entries.map((e) => [key(e), e.sig]))
  for (const log of rest) {
    if (fingerprint(log) === fingerprint(first)) continue
    const mine = new Map(log.entries.map((e) => [key(e), e.sig]))
    let onlyMine = 0
    let onlyBase = 0
    let differ = 0
    for (const [k, sig] of mine) {
      const b = base.get(k)
      if (b === undefined) onlyMine++
      else if (b !== sig) differ++
    }
    for (const k of base.keys()) if (!mine.has(k)) onlyBase++
    out.push(
      `${log.node} diverges from ${first.node}: ${log.entries.length} vs ${first.entries.length} entries, ` +
        `${onlyBase} only on ${first.node}, ${onlyMine} only on ${log.node}, ${differ} with different sigs`,
    )
  }
  return out
}

/** Status flags that must never be set: equivocation evidence, a failed write. When converged,
 * no node may still miss ranges or be behind on its own head. */
export function checkStatuses(statuses: readonly NodeStatusLike[], converged: boolean): string[] {
  const out: string[] = []
  for (const s of statuses) {
    if ((s.equivocations?.length ?? 0) > 0) out.push(`${s.node}: reports ${s.equivocations?.length} equivocation(s)`)
    if (s.writeFailed !== undefined && s.writeFailed !== null) out.push(`${s.node}: write failed: ${s.writeFailed}`)
    if (!converged) continue
    if (s.ownHeadBehind !== undefined && s.ownHeadBehind !== null) out.push(`${s.node}: own head behind: ${JSON.stringify(s.ownHeadBehind)}`)
    const missing = Object.keys(s.missing ?? {})
    if (missing.length > 0) out.push(`${s.node}: still misses ranges of ${missing.map(short).join(', ')}`)
  }
  return out
}

/**
 * Every check at once; returns all violations (empty = all invariants hold). Without
 * `converged` only what must hold at every moment is checked (shape, signature agreement,
 * acknowledged appends on their own node, no reused seq), so it can run mid-fault.
 */
export function checkInvariants(input: InvariantInput): string[] {
  const converged = input.converged ?? false
  const out: string[] = []
  for (const log of input.logs) out.push(...checkLogShape(log))
  out.push(...checkSigAgreement(input.logs))
  if (input.acked !== undefined) out.push(...checkAcked(input.logs, input.acked, converged))
  if (converged) out.push(...checkConverged(input.logs))
  if (input.statuses !== undefined) out.push(...checkStatuses(input.statuses, converged))
  return out
}
