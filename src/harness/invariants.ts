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
  /** `event` or `gap` (needed by the ingest and hostile-data checks only). */
  readonly kind?: string
  readonly type?: string
  readonly payload?: unknown
  /** Ingest logical id of an event. */
  readonly lid?: number
  /** Lids `[from, to]` of a gap sentinel. */
  readonly from?: number
  readonly to?: number
  /** The API's `retired: true` (its sled's key was retired at or before this seq), else absent. */
  readonly retired?: boolean
}

/**
 * What a node's reads say beside the entries: the `forked` and `retired` maps of GET /v1/events
 * (sled → fork seq, sled → retirement seq) and each sled's succession chain (GET
 * /v1/sleds/SLED/chain). Replicas that hold the same statements must say the same.
 */
export interface ReadFlags {
  readonly forked: Readonly<Record<string, number>>
  readonly retired: Readonly<Record<string, number>>
  /** Per sled, its chain as {@link canonicalChain} writes it. */
  readonly chains: Readonly<Record<string, string>>
}

/** One node's full log, as read in (sled, seq) order. */
export interface NodeLog {
  /** Name of the node in messages, e.g. `"node 2"`. */
  readonly node: string
  readonly entries: readonly LogEntry[]
  /** The read's flags, when read whole at the end (compared across nodes once converged). */
  readonly flags?: ReadFlags
}

/** An append the API answered with 201: it must never be lost or replaced. */
export interface AckedAppend {
  readonly sled: string
  readonly seq: number
  readonly sig: string
  /** Name of the node that acknowledged it. */
  readonly node?: string
  /** How many peers proved they held it before the answer (`acks=N`); absent or 0: durable on the node only. */
  readonly acks?: number
}

/** The parts of a node's /v1/status the invariants look at. */
export interface NodeStatusLike {
  readonly node: string
  /** Forked sleds: their count and the first few (docs/API.md, GET /v1/status). */
  readonly forks?: { readonly sleds?: number; readonly first?: ReadonlyArray<{ readonly sled?: unknown }> }
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
  /**
   * Sleds allowed to equivocate (the harness's attacker): they may be forked (read only below
   * their fork seq) and may read differently on nodes that have not seen the fork yet. Every
   * other sled's fork is a violation.
   */
  readonly equivocators?: ReadonlySet<string>
  /**
   * Nodes recovering their own entries after losing their disk (appends held): they need not
   * hold their acknowledged appends yet.
   */
  readonly recovering?: ReadonlySet<string>
  /**
   * Acknowledged appends (`sled:seq`) whose only copy was on a disk that was lost: acks=0
   * entries no peer held when the disk went. They need not be held anywhere (they are counted,
   * not lost); a different entry at their seq is still a re-signed seq.
   */
  readonly lostWithDisk?: ReadonlySet<string>
}

/** Most violations reported per check, so one broken node does not bury the rest. */
const MAX_PER_CHECK = 20

const short = (s: string): string => s.slice(0, 12)

const NONE: ReadonlySet<string> = new Set()

/** The `sled:seq` key of an entry or acknowledged append. */
export function key(e: { readonly sled: string; readonly seq: number }): string {
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
 * contiguous from 0.
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
      report(
        `${log.node}: sled ${short(e.sled)} seq ${e.seq} where ${expected} was expected ` +
          '(seqs must be contiguous from 0)',
      )
    }
    prev = e
  }
  return out
}

/**
 * Across nodes: every (sled, seq) held by several nodes has the same signature everywhere.
 * Sleds in `skip` are left out (an equivocator's slot may read differently on a node that has
 * not yet learnt the second version; that is checked once converged).
 */
export function checkSigAgreement(logs: readonly NodeLog[], skip: ReadonlySet<string> = NONE): string[] {
  const out: string[] = []
  const report = capped(out)
  const seen = new Map<string, { sig: string; node: string }>()
  for (const log of logs) {
    for (const e of log.entries) {
      if (skip.has(e.sled)) continue
      const k = key(e)
      const first = seen.get(k)
      if (first === undefined) seen.set(k, { sig: e.sig, node: log.node })
      else if (first.sig !== e.sig) {
        report(
          `${short(e.sled)}:${e.seq} differs: ${first.node} holds sig ${short(first.sig)}…, ` +
            `${log.node} holds ${short(e.sig)}…`,
        )
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
export function checkAcked(
  logs: readonly NodeLog[],
  acked: readonly AckedAppend[],
  converged: boolean,
  recovering: ReadonlySet<string> = NONE,
  lostWithDisk: ReadonlySet<string> = NONE,
): string[] {
  const out: string[] = []
  const reportMissing = capped(out)
  const reportReplaced = capped(out)
  const reportTwice = capped(out)
  const ackedAt = new Map<string, AckedAppend>()
  for (const a of acked) {
    const prior = ackedAt.get(key(a))
    if (prior !== undefined && prior.sig !== a.sig) {
      reportTwice(
        `${short(a.sled)}:${a.seq} was acknowledged twice with different entries ` +
          `(${prior.node ?? '?'} and ${a.node ?? '?'}): a re-signed seq`,
      )
    }
    ackedAt.set(key(a), a)
  }
  for (const log of logs) {
    const held = new Map<string, string>()
    for (const e of log.entries) held.set(key(e), e.sig)
    for (const a of acked) {
      const sig = held.get(key(a))
      if (sig !== undefined && sig !== a.sig) {
        reportReplaced(
          `${log.node}: holds a different entry at acknowledged ${short(a.sled)}:${a.seq} ` +
            `(sig ${short(sig)}…, acknowledged ${short(a.sig)}…)`,
        )
      }
      const required = (converged || (a.node === log.node && !recovering.has(log.node))) && !lostWithDisk.has(key(a))
      if (required && sig === undefined) {
        reportMissing(
          `${log.node}: lacks acknowledged ${short(a.sled)}:${a.seq}` +
            (a.node === undefined ? '' : ` (acknowledged by ${a.node})`),
        )
      }
    }
  }
  return out
}

/**
 * Number of nodes whose log differs from the first node's (0 when all are identical). Logs are
 * compared as sorted lists of (sled, seq, sig, retired flag), with their read flags when read
 * whole (forked and retired maps, succession chains); the signature covers the whole entry.
 */
export function divergence(logs: readonly NodeLog[]): number {
  const [first, ...rest] = logs
  if (first === undefined) return 0
  const fp = fingerprint(first)
  return rest.filter((l) => fingerprint(l) !== fp).length
}

function fingerprint(log: NodeLog): string {
  const entries = [...log.entries]
    .map((e) => `${e.sled}:${String(e.seq).padStart(12, '0')}:${e.sig}${e.retired === true ? ':retired' : ''}`)
    .sort()
    .join('\n')
  return log.flags === undefined ? entries : `${entries}\n${flagsPrint(log.flags)}`
}

function sortedJson(o: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function flagsPrint(f: ReadFlags): string {
  return `forked ${sortedJson(f.forked)}\nretired ${sortedJson(f.retired)}\nchains ${sortedJson(f.chains)}`
}

/**
 * A chain view (GET /v1/sleds/SLED/chain) as one string that is the same on every replica
 * holding the same statements: lists whose order follows arrival (successors, revocations) are
 * sorted, since two nodes may have received two successions or revocations in either order.
 */
export function canonicalChain(view: unknown): string {
  const v = (view ?? {}) as Record<string, unknown>
  const sortedList = (x: unknown): string[] => (Array.isArray(x) ? x.map((i) => JSON.stringify(i)).sort() : [])
  return JSON.stringify({
    sled: v.sled,
    retiredFrom: v.retiredFrom ?? null,
    predecessors: Array.isArray(v.predecessors) ? v.predecessors : [],
    successors: sortedList(v.successors),
    revocations: sortedList(v.revocations),
    contested: v.contested ?? false,
  })
}

/** Converged: every node holds the same sorted log; names what differs from the first node. */
export function checkConverged(logs: readonly NodeLog[]): string[] {
  const out: string[] = []
  const [first, ...rest] = logs
  if (first === undefined) return out
  const base = new Map(first.entries.map((e) => [key(e), e]))
  const firstPrint = fingerprint(first)
  for (const log of rest) {
    if (fingerprint(log) === firstPrint) continue
    const mine = new Map(log.entries.map((e) => [key(e), e]))
    let onlyMine = 0
    let onlyBase = 0
    let differ = 0
    let flagged = 0
    const examples: string[] = []
    const example = (k: string): void => {
      if (examples.length < 3) examples.push(`${short(k)}:${k.slice(k.lastIndexOf(':') + 1)}`)
    }
    for (const [k, e] of mine) {
      const b = base.get(k)
      if (b === undefined) onlyMine++
      else if (b.sig !== e.sig) {
        differ++
        example(k)
      } else if ((b.retired === true) !== (e.retired === true)) {
        flagged++
        example(k)
      }
    }
    for (const k of base.keys()) if (!mine.has(k)) onlyBase++
    const flags = log.flags === undefined || first.flags === undefined ? [] : flagsDiffer(first.flags, log.flags)
    out.push(
      `${log.node} diverges from ${first.node}: ${log.entries.length} vs ${first.entries.length} entries, ` +
        `${onlyBase} only on ${first.node}, ${onlyMine} only on ${log.node}, ${differ} with different sigs` +
        (flagged > 0 ? `, ${flagged} with a different retired flag` : '') +
        (examples.length > 0 ? ` (${examples.join(', ')})` : '') +
        (flags.length > 0 ? `; reads differently: ${flags.join(', ')}` : ''),
    )
  }
  return out
}

/** Which of the read flags differ between two nodes, e.g. `forked 3f2a…: 12 vs none`. */
function flagsDiffer(a: ReadFlags, b: ReadFlags): string[] {
  const out: string[] = []
  for (const what of ['forked', 'retired', 'chains'] as const) {
    const x = a[what] as Readonly<Record<string, unknown>>
    const y = b[what] as Readonly<Record<string, unknown>>
    for (const sled of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const [p, q] = [x[sled], y[sled]]
      if (p === q) continue
      const show = (v: unknown): string => (v === undefined ? 'none' : what === 'chains' ? 'another' : String(v))
      out.push(`${what === 'chains' ? 'chain of' : what} ${short(sled)}: ${show(p)} vs ${show(q)}`)
    }
  }
  return out
}

/** Status flags that must never be set: an honest sled forked, a failed write. When converged,
 * no node may still miss ranges or be behind on its own head. */
export function checkStatuses(
  statuses: readonly NodeStatusLike[],
  converged: boolean,
  equivocators: ReadonlySet<string> = NONE,
): string[] {
  const out: string[] = []
  for (const s of statuses) {
    // The status lists a few forked sleds and counts all: more forks than equivocators, or a
    // listed honest one, means an honest sled is forked.
    const listed = (s.forks?.first ?? []).map((f) => String(f.sled)).filter((sled) => !equivocators.has(sled))
    const honest = Math.max(listed.length, (s.forks?.sleds ?? 0) - equivocators.size)
    const which = listed.length > 0 ? ` (${listed.map(short).join(', ')})` : ''
    if (honest > 0) out.push(`${s.node}: reports ${honest} forked honest sled(s)${which}`)
    if (s.writeFailed !== undefined && s.writeFailed !== null) out.push(`${s.node}: write failed: ${s.writeFailed}`)
    if (!converged) continue
    if (s.ownHeadBehind !== undefined && s.ownHeadBehind !== null)
      out.push(`${s.node}: own head behind: ${JSON.stringify(s.ownHeadBehind)}`)
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
  const equivocators = input.equivocators ?? NONE
  const out: string[] = []
  for (const log of input.logs) out.push(...checkLogShape(log))
  out.push(...checkSigAgreement(input.logs, converged ? NONE : equivocators))
  if (input.acked !== undefined)
    out.push(...checkAcked(input.logs, input.acked, converged, input.recovering ?? NONE, input.lostWithDisk ?? NONE))
  if (converged) out.push(...checkConverged(input.logs))
  if (input.statuses !== undefined) out.push(...checkStatuses(input.statuses, converged, equivocators))
  return out
}

// ---- the harness's checks: hostile data, ingest accounting, streams, figures ----

/** What the checker knows about the harness's attacker (see hostile-peer.ts). */
export interface HostileSpec {
  /** The attacker's sled: its own entries (of `ownType`) are legitimately accepted. */
  readonly attackerSled: string
  /** Sleds that must never hold an accepted entry (the attacker's rebinding key). */
  readonly forbiddenSleds: readonly string[]
  /** The type of the attacker's own entries. */
  readonly ownType: string
  /** Types of every entry the attacker makes start with this (`hostile.`). */
  readonly typePrefix: string
  /** A string in the payload of every forged, tampered or rebound entry. */
  readonly marker: string
}

/**
 * Forged, tampered, rebound or inserted data accepted by a node: any entry carrying the
 * attacker's marker or an attacker type in an honest sled, any entry of a forbidden sled, any
 * entry of the attacker's sled other than its own kind. Returns the violations and how many
 * such entries were found (0 when every attack was refused).
 */
export function checkHostileData(
  logs: readonly NodeLog[],
  spec: HostileSpec,
): { violations: string[]; accepted: number } {
  const violations: string[] = []
  const report = capped(violations)
  const forbidden = new Set(spec.forbiddenSleds)
  let accepted = 0
  for (const log of logs) {
    for (const e of log.entries) {
      let why: string | null = null
      const marked = e.payload !== undefined && e.payload !== null && JSON.stringify(e.payload).includes(spec.marker)
      if (forbidden.has(e.sled)) why = "an entry of the attacker's rebinding key"
      else if (marked) why = `an entry carrying the forgery marker (type ${String(e.type)})`
      else if (e.sled === spec.attackerSled) {
        if (e.kind !== 'event' || e.type !== spec.ownType) why = `an attacker entry of type ${String(e.type ?? e.kind)}`
      } else if (typeof e.type === 'string' && e.type.startsWith(spec.typePrefix))
        why = `an honest sled holding attacker type ${e.type}`
      if (why !== null) {
        accepted++
        report(`${log.node}: accepted hostile data at ${short(e.sled)}:${e.seq}: ${why}`)
      }
    }
  }
  return { violations, accepted }
}

/** One answer of POST /v1/ingest for an event the harness published. */
export interface IngestSent {
  /** The sled the node ran as when it answered (a rotation starts the lids of a new sled from 0). */
  readonly sled?: string
  readonly lid: number
  /** true: queued on the bus; false: dropped (bus full). */
  readonly queued: boolean
  /** The event's number in its payload (`n`), to tell events apart. */
  readonly n: number
  /** When its request was sent (ms since the epoch): the event can only be lost by a crash after. */
  readonly at: number
}

/** Input of {@link checkIngest}: one node's ingest as its producer saw it, and its sled's log. */
export interface IngestInput {
  readonly node: string
  /** The node's own sled's entries, in seq order (from a converged log). */
  readonly entries: readonly LogEntry[]
  readonly sent: readonly IngestSent[]
  /**
   * How each of the node's processes ended, in time order: `crash` for SIGKILL (killed, or its
   * disk lost), false for a graceful stop. A queued event may end in a crash sentinel (events on
   * the bus die with the process) only when the process that queued it crashed; one that was
   * stopped gracefully drains its bus first.
   */
  readonly exits: readonly { readonly at: number; readonly crash: boolean }[]
}

/** Figures of one node's ingest accounting. */
export interface IngestAccount {
  /** Events in the log carrying a lid. */
  readonly events: number
  /** Gap sentinels. */
  readonly sentinels: number
  /** Lids covered by sentinels. */
  readonly lidsInSentinels: number
  /** Highest lid accounted for (-1: none). */
  readonly maxLid: number
  /** Events answered `queued` that ended in a sentinel (lost in a crash). */
  readonly queuedButLost: number
}

/**
 * Ingest accounting of one node: every lid from 0 to the highest lands in exactly one event or
 * one gap sentinel; every event the producer was told was queued is in the log (with its own
 * payload: no lid reused) or, after a crash only, in a sentinel; every dropped event is in a
 * sentinel and never in the log.
 */
export function checkIngest(input: IngestInput): { violations: string[]; account: IngestAccount } {
  const violations: string[] = []
  const report = capped(violations)
  const events = new Map<number, LogEntry>()
  const ranges: Array<[number, number]> = []
  for (const e of input.entries) {
    if (e.kind === 'gap' && typeof e.from === 'number' && typeof e.to === 'number') {
      if (e.from > e.to) report(`${input.node}: sentinel ${e.seq} has from ${e.from} > to ${e.to}`)
      ranges.push([e.from, e.to])
    } else if (e.kind === 'event' && typeof e.lid === 'number') {
      if (events.has(e.lid))
        report(`${input.node}: lid ${e.lid} is in two events (seqs ${events.get(e.lid)?.seq} and ${e.seq})`)
      events.set(e.lid, e)
    }
  }
  ranges.sort((a, b) => a[0] - b[0])
  const intervals: Array<[number, number, string]> = [
    ...ranges.map(([f, t]): [number, number, string] => [f, t, `sentinel ${f}..${t}`]),
    ...[...events.keys()].map((l): [number, number, string] => [l, l, `event lid ${l}`]),
  ].sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let next = 0
  let prev = ''
  for (const [from, to, what] of intervals) {
    if (from > next) report(`${input.node}: lids ${next}..${from - 1} are in no entry and no sentinel`)
    else if (from < next) report(`${input.node}: ${what} overlaps ${prev} (a lid accounted for twice)`)
    next = Math.max(next, to + 1)
    prev = what
  }
  const inRange = (lid: number): boolean => {
    // Binary search over the sorted, checked ranges.
    let lo = 0
    let hi = ranges.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const r = ranges[mid] as [number, number]
      if (lid < r[0]) hi = mid - 1
      else if (lid > r[1]) lo = mid + 1
      else return true
    }
    return false
  }
  let queuedButLost = 0
  for (const s of input.sent) {
    const e = events.get(s.lid)
    if (!s.queued) {
      if (e !== undefined)
        report(`${input.node}: lid ${s.lid} was dropped (bus full) but is in the log at seq ${e.seq}`)
      else if (!inRange(s.lid)) report(`${input.node}: dropped lid ${s.lid} is in no sentinel`)
      continue
    }
    if (e !== undefined) {
      const n = (e.payload as { n?: unknown } | null | undefined)?.n
      if (n !== s.n)
        report(`${input.node}: lid ${s.lid} holds event n=${String(n)}, but was given to event n=${s.n} (a reused lid)`)
    } else if (inRange(s.lid)) {
      queuedButLost++
      const end = input.exits.find((x) => x.at >= s.at)
      if (end?.crash !== true)
        report(
          `${input.node}: queued lid ${s.lid} ended in a sentinel though the process that queued it ` +
            (end === undefined ? 'is still running' : 'stopped gracefully'),
        )
    } else {
      report(`${input.node}: queued lid ${s.lid} is in no event and no sentinel`)
    }
  }
  return {
    violations,
    account: {
      events: events.size,
      sentinels: ranges.length,
      lidsInSentinels: ranges.reduce((n, [f, t]) => n + (t - f + 1), 0),
      maxLid: next - 1,
      queuedButLost,
    },
  }
}

/**
 * A stream client's deliveries against a node's final log: each sled delivered completely, in
 * seq order, with the signatures the log holds. (Exactly-once and order are checked as entries
 * arrive; this checks nothing is missing at the end.) An `equivocators` sled may have been
 * delivered more than the log serves in the end: entries at and past its fork seq that the node
 * served before it learnt of the fork. Below the fork every replica holds the same records, so
 * those must match.
 */
export function checkDelivered(
  name: string,
  delivered: ReadonlyMap<string, readonly string[]>,
  log: NodeLog,
  equivocators: ReadonlySet<string> = NONE,
  lostWithDisk: ReadonlySet<string> = NONE,
): string[] {
  const out: string[] = []
  const report = capped(out)
  // Entries past the log's end are allowed when each was lost with a disk (served before it went).
  const lostPast = (sled: string, from: number, to: number): boolean => {
    for (let seq = from; seq < to; seq++) if (!lostWithDisk.has(`${sled}:${seq}`)) return false
    return true
  }
  const bySled = new Map<string, string[]>()
  for (const e of log.entries) {
    let list = bySled.get(e.sled)
    if (list === undefined) bySled.set(e.sled, (list = []))
    list.push(e.sig)
  }
  for (const [sled, sigs] of bySled) {
    const got = delivered.get(sled) ?? []
    if (got.length < sigs.length) report(`${name}: received ${got.length} of ${sigs.length} entries of ${short(sled)}`)
    else if (got.length > sigs.length && !equivocators.has(sled) && !lostPast(sled, sigs.length, got.length))
      report(`${name}: received ${got.length} entries of ${short(sled)}, the log holds ${sigs.length}`)
    const n = Math.min(got.length, sigs.length)
    for (let i = 0; i < n; i++) {
      if (got[i] !== sigs[i]) {
        report(`${name}: received a different ${short(sled)}:${i} than ${log.node} holds`)
        break
      }
    }
  }
  for (const sled of delivered.keys())
    if (
      !bySled.has(sled) &&
      (delivered.get(sled)?.length ?? 0) > 0 &&
      !equivocators.has(sled) &&
      !lostPast(sled, 0, delivered.get(sled)?.length ?? 0)
    )
      report(`${name}: received entries of ${short(sled)}, which ${log.node} does not hold`)
  return out
}

/** Counts over converged logs for the report: each should be 0 (but `lostWithDisk`, which is allowed). */
export interface LogFigures {
  /** Acknowledged appends missing from (or replaced on) at least one node, but those lost with a disk. */
  readonly lost: number
  /**
   * Acknowledged acks=0 appends whose only copy was on a lost disk, missing at the end: allowed
   * (the write asked for no replica), counted apart and never as `lost`.
   */
  readonly lostWithDisk: number
  /** Repeated (sled, seq) within a node's log, summed over nodes. */
  readonly duplicates: number
  /** Breaks in per-sled seq contiguity, summed over nodes. */
  readonly gaps: number
  /** Nodes whose sorted log (and, read whole, its flags and chains) differs from the first node's. */
  readonly diverged: number
  /**
   * Acknowledged (sled, seq) signed twice by their sled: acknowledged again with another
   * signature, or held by a node with another one.
   */
  readonly resigned: number
}

/** The figures of {@link LogFigures}; `lostWithDisk` as in {@link InvariantInput}. */
export function logFigures(
  logs: readonly NodeLog[],
  acked: readonly AckedAppend[],
  lostWithDisk: ReadonlySet<string> = NONE,
): LogFigures {
  let duplicates = 0
  let gaps = 0
  const held = logs.map((log) => {
    const m = new Map<string, string>()
    let prev: LogEntry | undefined
    for (const e of log.entries) {
      if (prev !== undefined && prev.sled === e.sled && prev.seq === e.seq) duplicates++
      else if (e.seq !== (prev !== undefined && prev.sled === e.sled ? prev.seq + 1 : 0)) gaps++
      m.set(key(e), e.sig)
      prev = e
    }
    return m
  })
  const lost = new Set<string>()
  const gone = new Set<string>()
  const resigned = new Set<string>()
  const ackedSig = new Map<string, string>()
  for (const a of acked) {
    const k = key(a)
    const prior = ackedSig.get(k)
    if (prior !== undefined && prior !== a.sig) resigned.add(k)
    ackedSig.set(k, a.sig)
    for (const m of held) {
      const sig = m.get(k)
      if (sig === undefined && lostWithDisk.has(k)) gone.add(k)
      else if (sig !== a.sig) lost.add(k)
      if (sig !== undefined && sig !== a.sig) resigned.add(k)
    }
  }
  return {
    lost: lost.size,
    lostWithDisk: gone.size,
    duplicates,
    gaps,
    diverged: divergence(logs),
    resigned: resigned.size,
  }
}

/** The p-th percentile (0..100, nearest rank) of `values`; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] as number
}
