/**
 * Seeded scenarios for the sync protocol property test (test/sync/protocol.property.test.ts):
 * a topology of honest nodes, equivocating twins (several nodes signing with one key) and lying
 * peers, plus a list of actions (appends, deliveries, faults, cuts, reconnects, restarts). A
 * scenario is plain JSON: it prints, shrinks and replays.
 *
 * {@link runScenario} plays one on a {@link MemoryNetwork}, lets a checker look after each action
 * and after quiescence, and returns the first failure; {@link shrinkScenario} cuts a failing
 * scenario down to a shorter one that fails the same way.
 */
import { vi } from 'vitest'
import { clientIdOf, rootNameOf, type SledId } from '../../src/core/ids.js'
import { keyPairFromSeed, type KeyPair } from '../../src/core/signing.js'
import { decodeStateVector, encodeStateVector } from '../../src/core/update-codec.js'
import { intIn, keySeedOf, pick, prng, shuffled, streamOf, type Random } from '../../src/harness/random.js'
import { decodeMessage, encodeDigest, encodeStep1 } from '../../src/sync/messages.js'
import type { SessionLimits } from '../../src/sync/peer-session.js'
import type { Fault, MessageType, Side } from './memory-link.js'
import { MemoryNetwork, type LinkSpec } from './memory-network.js'
import { MemoryNode } from './memory-node.js'

/** Which adversaries a scenario has. */
export type Profile = 'honest' | 'liars' | 'equivocation'

/** What a lying peer lies about. */
export type Lie =
  /** Step 1 claims far more entries than exist (of its peers' sleds, the receiver's own, others). */
  | 'sv-huge'
  /** Step 1 claims nothing, or zero of everything. */
  | 'sv-zero'
  /** Step 1 names clients nobody has. */
  | 'sv-unknown'
  /** Digests hash to random bytes, name unknown clients or give wrong lengths. */
  | 'digest'

/** One step of a scenario. Nodes are named; `link` indexes {@link Scenario.links} (modulo). */
export type Action =
  /** An honest writer (or a liar: its entries are honest) appends `n` entries. */
  | { readonly t: 'append'; readonly node: string; readonly n: number; readonly batch: boolean }
  /** A twin signs `n` entries of the shared key at whatever seqs its own log is at. */
  | { readonly t: 'equivocate'; readonly node: string; readonly n: number }
  /** Delivers `k` random messages; `spread` lets the logs run between deliveries. */
  | { readonly t: 'deliver'; readonly k: number; readonly s: number; readonly spread: boolean }
  | { readonly t: 'fault'; readonly fault: Fault; readonly s: number }
  | { readonly t: 'cut'; readonly link: number }
  | { readonly t: 'connect'; readonly link: number }
  /**
   * The node closes its log and reopens it from its database; its links drop and redial.
   * `pending` single appends are made just before, so the close finds them in the pipeline.
   */
  | { readonly t: 'restart'; readonly node: string; readonly pending: number }

/** Nodes by role. Names: honest `n<i>`, twins `t<i>` (one shared key), liars `l<i>`. */
export interface Scenario {
  readonly seed: number
  readonly profile: Profile
  readonly honest: readonly string[]
  readonly twins: readonly string[]
  readonly liars: ReadonlyArray<{ readonly name: string; readonly lies: readonly Lie[] }>
  /** [dialer, acceptor]; a pair may appear twice (both dial, as in a mesh). */
  readonly links: ReadonlyArray<readonly [string, string]>
  readonly limits: Partial<SessionLimits>
  /** Compaction thresholds of every log (small ones make restarts load snapshot chunks). */
  readonly snapshot: { readonly minBytes: number; readonly chunkBytes: number }
  readonly actions: readonly Action[]
}

/** A property that did not hold. `kind` names the check, so shrinking keeps the same failure. */
export class PropertyFailure extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message)
  }
}

/** What a failed run reports. */
export interface Failure {
  readonly kind: string
  readonly message: string
  /** Index of the action after which a check failed, or 'settle' for the checks at quiescence. */
  readonly at: number | 'settle'
}

/** What a run exercised (so a passing property can show it was not vacuous). */
export interface RunStats {
  readonly delivered: number
  readonly dropped: number
  readonly duplicated: number
  readonly reordered: number
  readonly cuts: number
  readonly restarts: number
  /** Entries acknowledged to honest writers and liars. */
  readonly acked: number
  /** Updates that started past the receiver's head (a dropped or reordered predecessor). */
  readonly gaps: number
  /** Live relays dropped because the peer's send buffer was full. */
  readonly relaysDropped: number
  /** Records received again that an honest replica already held. */
  readonly duplicates: number
  /** Forked sleds known to the first honest replica. */
  readonly forkedSleds: number
  /** The most versions of one slot the twins signed. */
  readonly versionsSigned: number
  /** Anti-entropy rounds until quiescence (0 when the run failed before). */
  readonly settleRounds: number
}

/** The outcome of {@link runScenario}. */
export interface RunResult {
  readonly failure: Failure | null
  readonly stats: RunStats
}

/** A running scenario, as checks see it. */
export interface RunState {
  readonly scenario: Scenario
  readonly net: MemoryNetwork
  readonly honest: readonly MemoryNode[]
  readonly twins: readonly MemoryNode[]
  readonly liars: readonly MemoryNode[]
  /** The twins' shared sled, or null. */
  readonly twinSled: SledId | null
  /** Acknowledged entries (the append resolved) of honest writers and liars: sled → seq → sig. */
  readonly acked: ReadonlyMap<SledId, ReadonlyMap<number, string>>
  /** Appends of honest writers or liars that were refused (none should be). */
  readonly refused: readonly string[]
}

/** What a run checks. Checks throw {@link PropertyFailure}. */
export interface Checker {
  /** After each action, once the network is idle (messages may still be queued). */
  afterAction(state: RunState, step: number): void
  /** A summary of a node's state that anti-entropy could still change (quiescence: none does). */
  fingerprint(node: MemoryNode): string
  /** After quiescence. `rounds` is how many anti-entropy rounds it took, null if it never settled. */
  afterSettle(state: RunState, rounds: number | null): void
}

// ---- generation ----

const MiB = 1024 * 1024
const LIES: readonly Lie[] = ['sv-huge', 'sv-zero', 'sv-unknown', 'digest']

/** A random scenario of `profile` from `seed` (same seed and profile, same scenario). */
export function generateScenario(seed: number, profile: Profile): Scenario {
  const r = streamOf(seed, `scenario ${profile}`)
  const honest = Array.from({ length: intIn(r, 2, 4) }, (_, i) => `n${i}`)
  // Up to 10 twins: more versions of a slot than a replica keeps (8) in about one run in five.
  const twins = profile === 'equivocation' ? Array.from({ length: intIn(r, 2, 10) }, (_, i) => `t${i}`) : []
  const liars =
    profile === 'liars'
      ? Array.from({ length: intIn(r, 1, 2) }, (_, i) => {
          const lies = shuffled(r, LIES).slice(0, intIn(r, 1, LIES.length))
          return { name: `l${i}`, lies }
        })
      : []
  const links: Array<[string, string]> = []
  const join = (a: string, b: string): void => {
    links.push(r() < 0.5 ? [a, b] : [b, a])
    if (r() < 0.15) links.push([links.at(-1)?.[1] as string, links.at(-1)?.[0] as string])
  }
  // A random spanning tree keeps the honest nodes connected; extra edges add cycles.
  for (let i = 1; i < honest.length; i++) join(honest[i] as string, pick(r, honest.slice(0, i)))
  for (let i = 0; i < honest.length; i++)
    for (let j = i + 2; j < honest.length; j++) if (r() < 0.3) join(honest[i] as string, honest[j] as string)
  for (const outsider of [...twins, ...liars.map((l) => l.name)]) {
    for (const h of shuffled(r, honest).slice(0, r() < 0.25 ? 2 : 1)) join(outsider, h)
  }
  const limits: Partial<SessionLimits> = {
    chunkBytes: pick(r, [600, 4096, 128 * 1024]),
    // A small send buffer drops live relays (the peer must fetch them) and paces answers on
    // the session's 20 ms timer, which makes a run slower: one run in four.
    highWaterBytes: r() < 0.25 ? 2048 : 8 * MiB,
    maxInflight: pick(r, [1, 2, 8]),
  }
  const snapshot = r() < 0.5 ? { minBytes: 2048, chunkBytes: 1024 } : { minBytes: 8 * MiB, chunkBytes: 4 * MiB }
  const writers = [...honest, ...liars.map((l) => l.name)]
  // The attack: every twin signs its first entries before it hears of the others, so each of
  // those slots has as many versions as there are twins (more than a replica keeps, past 8).
  const actions: Action[] = twins.map((node) => ({ t: 'equivocate', node, n: intIn(r, 1, 3) }))
  const count = intIn(r, 15, 50)
  for (let i = 0; i < count; i++) {
    const x = r()
    const s = Math.floor(r() * 2 ** 31)
    if (x < 0.22) actions.push({ t: 'append', node: pick(r, writers), n: intIn(r, 1, 5), batch: r() < 0.5 })
    else if (x < 0.32 && twins.length > 0) actions.push({ t: 'equivocate', node: pick(r, twins), n: intIn(r, 1, 4) })
    else if (x < 0.62) actions.push({ t: 'deliver', k: intIn(r, 1, 30), s, spread: r() < 0.3 })
    else if (x < 0.77) actions.push({ t: 'fault', fault: pick(r, ['drop', 'dup', 'swap'] as const), s })
    else if (x < 0.85) actions.push({ t: 'cut', link: intIn(r, 0, links.length - 1) })
    else if (x < 0.93) actions.push({ t: 'connect', link: intIn(r, 0, links.length - 1) })
    else actions.push({ t: 'restart', node: pick(r, writers), pending: intIn(r, 0, 3) })
  }
  return { seed, profile, honest, twins, liars, links, limits, snapshot, actions }
}

// ---- running ----

/** The key pair a scenario gives a node (all twins share one). */
function keysOf(s: Scenario, name: string): KeyPair {
  return keyPairFromSeed(keySeedOf(s.seed, name.startsWith('t') ? 'twin' : name))
}

/**
 * Plays `s` and returns the first failure (a check, a refused append, a stuck network or an
 * exception) or null, with what the run exercised. Everything it opened is closed before it
 * returns.
 */
export async function runScenario(s: Scenario, checker: Checker): Promise<RunResult> {
  const names = [...s.honest, ...s.twins, ...s.liars.map((l) => l.name)]
  const index = new Map(names.map((n, i) => [n, i]))
  const nodes = names.map(
    (name, i) =>
      new MemoryNode({
        keys: keysOf(s, name),
        name,
        limits: s.limits,
        log: { snapshotMinBytes: s.snapshot.minBytes, snapshotChunkBytes: s.snapshot.chunkBytes },
        // Twins write at different times, so their versions of a slot differ by ts too.
        firstTs: 1_700_000_000_000 + i * 1_000_000,
      }),
  )
  const allClients = [...new Set(nodes.map((n) => clientIdOf(n.keys.sled) as number))]
  const specs: LinkSpec[] = []
  for (const [a, b] of s.links) {
    const ia = index.get(a)
    const ib = index.get(b)
    if (ia === undefined || ib === undefined) continue
    const liar = s.liars.find((l) => l.name === a || l.name === b)
    const liarSide: Side = liar?.name === a ? 0 : 1
    const rewrite =
      liar === undefined
        ? undefined
        : liarRewrite(liar.lies, liarSide, allClients, streamOf(s.seed, `lies ${liar.name} ${specs.length}`))
    specs.push({ a: ia, b: ib, ...(rewrite === undefined ? {} : { rewrite }) })
  }
  // The sessions' timers (answer pacing, and handshake and resync timers that never fire) and
  // their clock (gap and refetch rate limits) are fake, so a run replays the same way however
  // loaded the machine is, and never waits for a pacing timer.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
  const net = new MemoryNetwork(nodes, specs, {
    limits: s.limits,
    advanceTimers: (ms) => {
      vi.advanceTimersByTime(ms)
    },
  })
  const acked = new Map<SledId, Map<number, string>>()
  const refused: string[] = []
  const state: RunState = {
    scenario: s,
    net,
    honest: nodes.slice(0, s.honest.length),
    twins: nodes.slice(s.honest.length, s.honest.length + s.twins.length),
    liars: nodes.slice(s.honest.length + s.twins.length),
    twinSled: s.twins.length === 0 ? null : keysOf(s, 't0').sled,
    acked,
    refused,
  }
  const rand = streamOf(s.seed, 'deliveries')
  let step: number | 'settle' = -1
  let appended = 0
  /** Appends `n` entries (one batch, or one append each); honest ones are tracked as acks. */
  const append = (node: MemoryNode, n: number, batch: boolean, honest: boolean): void => {
    const inputs = Array.from({ length: n }, () => ({
      type: honest ? 'append' : 'equivocate',
      payload: { by: node.name, n: appended++ },
    }))
    for (const b of batch ? [inputs] : inputs.map((x) => [x])) {
      if (b.length === 0) continue
      const p = node.append(b)
      if (!honest) {
        p.catch(() => undefined)
        continue
      }
      p.then(
        (entries) => {
          for (const e of entries) {
            const m = acked.get(e.sled) ?? new Map<number, string>()
            m.set(e.seq, e.sig)
            acked.set(e.sled, m)
          }
        },
        (err: Error) => refused.push(`${node.name}: ${err.message}`),
      )
    }
  }
  let rounds: number | null = null
  let failure: Failure | null = null
  try {
    for (const n of nodes) await n.open()
    for (let i = 0; i < specs.length; i++) net.connect(i)
    for (const [i, a] of s.actions.entries()) {
      step = i
      const node = 'node' in a ? nodes[index.get(a.node) ?? -1] : undefined
      switch (a.t) {
        case 'append':
        case 'equivocate':
          if (node !== undefined) append(node, a.n, a.t === 'equivocate' || a.batch, a.t === 'append')
          break
        case 'deliver': {
          const r = prng(a.s)
          for (let k = 0; k < a.k; k++) {
            if (!net.deliverRandom(r)) break
            if (a.spread) await new Promise((res) => setImmediate(res))
          }
          break
        }
        case 'fault':
          net.fault(a.fault, prng(a.s))
          break
        case 'cut':
          net.cut(a.link % specs.length)
          break
        case 'connect':
          net.connect(a.link % specs.length)
          break
        case 'restart':
          if (node === undefined || s.twins.includes(node.name)) break
          // Appends still in the commit pipeline when the log closes: close must finish them.
          append(node, a.pending, false, true)
          await net.restart(nodes.indexOf(node))
          break
      }
      await net.idle()
      if (refused.length > 0) throw new PropertyFailure('append refused', refused.join('\n'))
      checker.afterAction(state, i)
    }
    step = 'settle'
    rounds = await net.settle(rand, (node) => checker.fingerprint(node))
    if (refused.length > 0) throw new PropertyFailure('append refused', refused.join('\n'))
    const unhealthy = net.unhealthy()
    if (unhealthy.length > 0) throw new PropertyFailure('link unhealthy', `after quiescence: ${unhealthy.join(', ')}`)
    checker.afterSettle(state, rounds)
  } catch (err) {
    const kind = err instanceof PropertyFailure ? err.kind : 'crash'
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
    failure = { kind, message: err instanceof PropertyFailure ? err.message : message, at: step }
  }
  try {
    const stats = statsOf(state, rounds ?? 0)
    await net.close()
    return { failure, stats }
  } finally {
    vi.useRealTimers()
  }
}

/** What the run exercised, read from the network's counters and the nodes' sessions and logs. */
function statsOf(state: RunState, settleRounds: number): RunStats {
  const c = state.net.counts
  let gaps = 0
  let relaysDropped = 0
  let duplicates = 0
  for (const n of [...state.honest, ...state.twins, ...state.liars]) {
    for (const st of [...n.ended, ...n.sessions.map((x) => x.stats())]) {
      gaps += st.rejected.UPDATE_GAP ?? 0
      relaysDropped += st.liveUpdatesDropped
    }
  }
  let forkedSleds = 0
  for (const n of state.honest) {
    try {
      duplicates += n.log.status().duplicates
    } catch {
      // a node that failed mid-restart has no open log
    }
  }
  try {
    forkedSleds = state.honest[0]?.log.status().forks.sleds ?? 0
  } catch {
    // as above
  }
  // What each twin's own doc holds at each seq: the version it signed, or the first it received.
  const signed = new Map<number, Set<string>>()
  for (const t of state.twins) {
    try {
      t.log.doc
        .getArray<string>(rootNameOf(t.keys.sled))
        .toArray()
        .forEach((r, seq) => {
          signed.set(seq, (signed.get(seq) ?? new Set<string>()).add(r))
        })
    } catch {
      // as above
    }
  }
  let acked = 0
  for (const m of state.acked.values()) acked += m.size
  return {
    delivered: c.delivered,
    dropped: c.drop,
    duplicated: c.dup,
    reordered: c.swap,
    cuts: c.cut,
    restarts: c.restart,
    acked,
    gaps,
    relaysDropped,
    duplicates,
    forkedSleds,
    versionsSigned: Math.max(0, ...[...signed.values()].map((v) => v.size)),
    settleRounds,
  }
}

/**
 * What a liar's end does to its step 1 and digests. Each lie is told most of the time (so the
 * honest side also sees it tell the truth in between).
 */
function liarRewrite(
  lies: readonly Lie[],
  liarSide: Side,
  clients: readonly number[],
  r: Random,
): (side: Side, msg: Uint8Array, type: MessageType) => Uint8Array | null {
  return (side, msg, type) => {
    if (side !== liarSide || r() < 0.2) return msg
    const decoded = decodeMessage(msg)
    if (decoded.t === 'step1') {
      const sv = decodeStateVector(decoded.stateVector)
      const svLies = lies.filter((l) => l.startsWith('sv-'))
      if (svLies.length === 0) return msg
      const lie = pick(r, svLies)
      if (lie === 'sv-zero') {
        if (r() < 0.5) sv.clear()
        else for (const c of [...sv.keys(), ...clients]) sv.set(c, 0)
      } else if (lie === 'sv-huge') {
        for (const c of clients) {
          if (r() < 0.6) sv.set(c, pick(r, [2 ** 31, 2 ** 45, (sv.get(c) ?? 0) + intIn(r, 1, 5)]))
        }
      } else {
        for (let i = intIn(r, 1, 3); i > 0; i--) sv.set(Math.floor(r() * 2 ** 53), intIn(r, 0, 2 ** 40))
      }
      return encodeStep1(encodeStateVector(sv))
    }
    if (type === 'digest' && decoded.t === 'digest' && lies.includes('digest')) {
      const digests = decoded.digests.map((d) => ({
        client: d.client,
        length: r() < 0.2 ? d.length + intIn(r, 1, 3) : d.length,
        hash: new Uint8Array(32).map(() => Math.floor(r() * 256)),
      }))
      if (r() < 0.5)
        digests.push({ client: Math.floor(r() * 2 ** 53), length: intIn(r, 0, 100), hash: new Uint8Array(32) })
      return encodeDigest(digests)
    }
    return msg
  }
}

// ---- shrinking and printing ----

/**
 * True when the honest nodes are connected by honest links: the property only promises
 * convergence then (a path through a liar or twin is a path through an adversary).
 */
export function honestConnected(s: Scenario): boolean {
  const [first] = s.honest
  if (first === undefined) return false
  const reached = new Set([first])
  for (let grew = true; grew; ) {
    grew = false
    for (const [a, b] of s.links) {
      if (!s.honest.includes(a) || !s.honest.includes(b) || reached.has(a) === reached.has(b)) continue
      reached.add(a).add(b)
      grew = true
    }
  }
  return reached.size === s.honest.length
}

/** Candidate scenarios one step smaller than `s`: fewer actions, fewer nodes, smaller counts. */
function* smaller(s: Scenario): Generator<Scenario> {
  const acts = s.actions
  // Remove chunks of actions, largest first (delta debugging).
  for (let size = Math.max(1, Math.floor(acts.length / 2)); size >= 1; size = Math.floor(size / 2)) {
    for (let at = 0; at + size <= acts.length; at += size) {
      yield { ...s, actions: [...acts.slice(0, at), ...acts.slice(at + size)] }
    }
    if (size === 1) break
  }
  // Remove a node with its links and actions.
  const removable = [...s.honest, ...s.twins, ...s.liars.map((l) => l.name)]
  for (const name of removable.reverse()) {
    yield {
      ...s,
      honest: s.honest.filter((n) => n !== name),
      twins: s.twins.filter((n) => n !== name),
      liars: s.liars.filter((l) => l.name !== name),
      links: s.links.filter(([a, b]) => a !== name && b !== name),
      actions: acts.filter((a) => !('node' in a) || a.node !== name),
    }
  }
  // Drop a link.
  for (let i = s.links.length - 1; i >= 0; i--) yield { ...s, links: s.links.filter((_, j) => j !== i) }
  // Halve counts.
  for (const [i, a] of acts.entries()) {
    const half =
      (a.t === 'append' || a.t === 'equivocate') && a.n > 1
        ? { ...a, n: Math.ceil(a.n / 2) }
        : a.t === 'deliver' && a.k > 1
          ? { ...a, k: Math.ceil(a.k / 2), spread: false }
          : null
    if (half !== null) yield { ...s, actions: acts.map((b, j) => (j === i ? half : b)) }
  }
}

/**
 * Shrinks a failing scenario greedily: takes the first smaller candidate that fails with the
 * same kind, until none does or the budget (runs, ms) is spent.
 */
export async function shrinkScenario(
  s: Scenario,
  failure: Failure,
  checker: Checker,
  budget = { runs: 400, ms: 120_000 },
): Promise<{ scenario: Scenario; failure: Failure; runs: number }> {
  const t0 = Date.now()
  let best = { scenario: s, failure }
  let runs = 0
  let improved = true
  while (improved && runs < budget.runs && Date.now() - t0 < budget.ms) {
    improved = false
    for (const candidate of smaller(best.scenario)) {
      if (!honestConnected(candidate)) continue
      if (runs >= budget.runs || Date.now() - t0 >= budget.ms) break
      runs++
      const f = (await runScenario(candidate, checker)).failure
      if (f !== null && f.kind === failure.kind) {
        best = { scenario: candidate, failure: f }
        improved = true
        break
      }
    }
  }
  return { ...best, runs }
}

/** A scenario as readable lines: the setup, then one numbered action per line. */
export function formatScenario(s: Scenario): string {
  const lines = [
    `seed ${s.seed}, profile ${s.profile}`,
    `honest ${s.honest.join(' ')}; twins ${s.twins.join(' ') || '-'}; ` +
      `liars ${s.liars.map((l) => `${l.name}(${l.lies.join(',')})`).join(' ') || '-'}`,
    `links ${s.links.map(([a, b], i) => `#${i} ${a}->${b}`).join(', ')}`,
    `limits ${JSON.stringify(s.limits)} snapshot ${JSON.stringify(s.snapshot)}`,
  ]
  for (const [i, a] of s.actions.entries()) {
    const { t, ...rest } = a
    lines.push(`${String(i).padStart(3)} ${t} ${JSON.stringify(rest)}`)
  }
  return lines.join('\n')
}
