/**
 * The fault schedule of a harness run: from a seed, a duration, a node count and the enabled
 * fault kinds, a list of timed actions. Pure and deterministic, so a failing run is replayed by
 * running its seed again.
 *
 * Faults come in episodes: a fault action, then the action that heals it, then a settling time
 * in which the cluster must converge. Faults that take nodes or links away (partition, kill,
 * stop, wipe, wipe-peers-down) run one at a time on the `fault` lane, so each heal's
 * convergence is measured on its own; cutting a wiped node off from every peer that holds its
 * entries is a fault of its own (`wipe-peers-down`: the node must refuse writes until they are
 * back, never re-sign). So are the faults of key succession under partitions (issue 16): a key
 * rotated while its node is cut off (`rotate-partitioned`), a retired key revoked while a node is
 * cut off (`revoke-partitioned`), and a disk lost while it holds writes no peer has
 * (`wipe-holding-acks`). Link shaping (`latency`) and the hostile peer have lanes of their own and
 * overlap everything. Every episode heals within the run, and the run ends with a `heal-all`
 * after a quiet period in which nothing is broken.
 */
import { intIn, pick, shuffled, streamOf, type Random } from './random.js'

/** The kinds that take nodes or links away: one episode at a time, on the `fault` lane. */
const LANE_FAULTS = [
  'partition',
  'kill',
  'stop',
  'wipe',
  'wipe-peers-down',
  'rotate-partitioned',
  'revoke-partitioned',
  'wipe-holding-acks',
] as const

/** Every fault kind, in the order the report lists them. */
export const FAULT_KINDS = [...LANE_FAULTS, 'latency', 'hostile'] as const

/** A kind of fault the schedule can inject. */
export type FaultKind = (typeof FAULT_KINDS)[number]

type LaneFault = (typeof LANE_FAULTS)[number]

/** How a partition divides the nodes. */
export type PartitionShape = 'halves' | 'bridge' | 'ring'

/** Two nodes, lower index first: the links between them (both dial directions) are affected. */
export type NodePair = readonly [number, number]

/** What an action does. */
export type FaultAction =
  | {
      readonly op: 'partition'
      readonly shape: PartitionShape
      /**
       * `cut`: connections reset and refused; `blackhole`: bytes silently dropped both ways;
       * `one-way`: each pair's bytes dropped in one direction only (asymmetric routing: one
       * side hears the other but cannot answer).
       */
      readonly mode: 'cut' | 'blackhole' | 'one-way'
      /** The sides, for the log: halves `[A, B]`, bridge `[A, [bridge], B]`, ring `[cycle order]`. */
      readonly groups: readonly (readonly number[])[]
      /** Lower index first, except in `one-way` mode: `[x, y]` means x's bytes do not reach y. */
      readonly pairs: readonly NodePair[]
    }
  | { readonly op: 'unpartition'; readonly pairs: readonly NodePair[] }
  | { readonly op: 'kill'; readonly node: number }
  | { readonly op: 'restart'; readonly node: number }
  | { readonly op: 'stop'; readonly node: number }
  | { readonly op: 'cont'; readonly node: number }
  | { readonly op: 'wipe'; readonly node: number }
  | { readonly op: 'recover'; readonly node: number }
  /** Disk loss while every other node is down: the node restarts alone and must wait for them. */
  | { readonly op: 'wipe-peers-down'; readonly node: number }
  | { readonly op: 'peers-return'; readonly node: number }
  /**
   * Planned key rotation of a node cut off from every peer: the node is stopped, `sledlog
   * rotate-key` run on its data directory, and it starts again as its successor, still cut off.
   * Healed by `unpartition`.
   */
  | {
      readonly op: 'rotate-partitioned'
      readonly node: number
      readonly mode: 'cut' | 'blackhole'
      readonly pairs: readonly NodePair[]
    }
  /**
   * A retired key revoked (`sledlog revoke-key`) while `node` is cut off from every peer; signed
   * with the key itself (`self`) or the cluster's admin key (`admin`), appended through the
   * cut-off node or through one of the others (`via`), so the retirement flags differ across the
   * partition until it heals. `pick` (0..1) chooses the target and its first retired seq among
   * what exists when it runs. Healed by `unpartition`.
   */
  | {
      readonly op: 'revoke-partitioned'
      readonly node: number
      readonly mode: 'cut' | 'blackhole'
      readonly authority: 'self' | 'admin'
      readonly via: 'cut-off' | 'other'
      readonly pick: number
      readonly pairs: readonly NodePair[]
    }
  /**
   * Disk loss of a node holding writes no peer has. `cutOff`: the node is cut off from every peer
   * and written to (acks=0, acknowledged, held by it alone; acks=N, which must time out or be
   * refused); otherwise it stays linked and writes with acks=N are acknowledged by its peers.
   * Then it is SIGKILLed and its database deleted (key kept).
   */
  | {
      readonly op: 'wipe-holding-acks'
      readonly node: number
      readonly cutOff: boolean
      /** The N of the acks=N writes. */
      readonly acks: number
      readonly pairs: readonly NodePair[]
    }
  /** Heals `wipe-holding-acks`: links restored, the node restarts, proves its head and moves to a successor. */
  | { readonly op: 'recover-holding-acks'; readonly node: number; readonly pairs: readonly NodePair[] }
  | {
      readonly op: 'shape'
      readonly pairs: readonly NodePair[]
      readonly latencyMs: number
      readonly jitterMs: number
      /** null: unlimited. */
      readonly bytesPerSec: number | null
    }
  | { readonly op: 'unshape'; readonly pairs: readonly NodePair[] }
  | { readonly op: 'hostile'; readonly targets: readonly number[] }
  | { readonly op: 'calm' }
  | { readonly op: 'heal-all' }

/** The lane an action runs on: actions of one lane run in order, lanes run side by side. */
export type Lane = 'fault' | 'latency' | 'hostile'

/** One timed action. */
export interface ScheduledAction {
  /** Milliseconds after the start of the run. */
  readonly at: number
  /** Episode number (fault and heal of one episode share it); 0 for the final heal. */
  readonly episode: number
  readonly kind: FaultKind | 'final'
  readonly lane: Lane
  /** True for actions that undo a fault: the cluster's time to converge is measured after them. */
  readonly heal: boolean
  readonly action: FaultAction
}

/** Input of {@link makeSchedule}. */
export interface ScheduleOptions {
  readonly seed: number
  readonly durationMs: number
  readonly nodes: number
  readonly faults: readonly FaultKind[]
}

/** A run's schedule. */
export interface Schedule {
  /** Every action, by time (ties keep lane order: fault, latency, hostile). */
  readonly actions: readonly ScheduledAction[]
  /** No fault starts before this (the cluster forms and the workload warms up). */
  readonly warmupMs: number
  /** When the final `heal-all` runs; nothing is broken after it. */
  readonly finalHealAt: number
  /** Fault kinds that were asked for but cannot apply to this cluster (e.g. a partition of 1 node). */
  readonly skipped: readonly FaultKind[]
}

/** Range in ms `[min, cap]`, where the cap shrinks with short runs so episodes fit. */
function span(rand: Random, min: number, max: number, durationMs: number, share: number): number {
  const cap = Math.max(min, Math.min(max, Math.floor(durationMs * share)))
  return intIn(rand, min, cap)
}

/** Whether a fault kind can apply to a cluster of `nodes`. */
export function applicable(kind: FaultKind, nodes: number): boolean {
  switch (kind) {
    case 'partition':
    case 'latency':
      return nodes >= 2
    case 'wipe':
    case 'wipe-peers-down':
    case 'wipe-holding-acks':
      // A lone node that lost its disk has no peer to prove its head: it waits for an operator.
      return nodes >= 2
    case 'rotate-partitioned':
    case 'revoke-partitioned':
      // Cut off from whom?
      return nodes >= 2
    case 'kill':
    case 'stop':
    case 'hostile':
      return nodes >= 1
  }
}

function allPairs(nodes: readonly number[]): NodePair[] {
  const out: NodePair[] = []
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const a = nodes[i] as number
      const b = nodes[j] as number
      out.push(a < b ? [a, b] : [b, a])
    }
  }
  return out
}

function crossPairs(a: readonly number[], b: readonly number[]): NodePair[] {
  const out: NodePair[] = []
  for (const x of a) for (const y of b) out.push(x < y ? [x, y] : [y, x])
  return out.sort((p, q) => p[0] - q[0] || p[1] - q[1])
}

function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b)
}

/** A partition of `n` nodes: its shape, sides and the node pairs whose links are cut. */
function partitionOf(rand: Random, n: number): Extract<FaultAction, { op: 'partition' }> {
  const shapes: PartitionShape[] = ['halves']
  if (n >= 3) shapes.push('bridge')
  if (n >= 4) shapes.push('ring') // a ring of 3 connects everyone: no partition at all
  const shape = pick(rand, shapes)
  const r = rand()
  const mode = r < 0.5 ? 'cut' : r < 0.8 ? 'blackhole' : 'one-way'
  // In one-way mode the first side's bytes are dropped towards the other side.
  const across = (a: readonly number[], b: readonly number[]): NodePair[] =>
    mode === 'one-way' ? a.flatMap((x) => b.map((y): NodePair => [x, y])) : crossPairs(a, b)
  const order = shuffled(
    rand,
    Array.from({ length: n }, (_, i) => i),
  )
  if (shape === 'halves') {
    const k = intIn(rand, 1, n - 1)
    const a = sorted(order.slice(0, k))
    const b = sorted(order.slice(k))
    return { op: 'partition', shape, mode, groups: [a, b], pairs: across(a, b) }
  }
  if (shape === 'bridge') {
    // One node keeps links to both sides, which cannot reach each other: everything between
    // them must be relayed through the bridge.
    const [bridge, ...rest] = order
    const k = intIn(rand, 1, rest.length - 1)
    const a = sorted(rest.slice(0, k))
    const b = sorted(rest.slice(k))
    return { op: 'partition', shape, mode, groups: [a, [bridge as number], b], pairs: across(a, b) }
  }
  // Ring: each node keeps only its two neighbours in a random cycle.
  const adjacent = new Set<string>()
  for (let i = 0; i < n; i++) {
    const x = order[i] as number
    const y = order[(i + 1) % n] as number
    adjacent.add(x < y ? `${x},${y}` : `${y},${x}`)
  }
  const pairs = allPairs(order)
    .filter(([x, y]) => !adjacent.has(`${x},${y}`))
    .sort((p, q) => p[0] - q[0] || p[1] - q[1])
  return { op: 'partition', shape, mode, groups: [order], pairs }
}

/** Every pair between `node` and the others: cutting them isolates it. */
function isolate(node: number, n: number): NodePair[] {
  return crossPairs(
    [node],
    Array.from({ length: n }, (_, i) => i).filter((i) => i !== node),
  )
}

/** Links to slow down: every link of one node (a slow node), or a random subset of pairs. */
function shapedPairs(rand: Random, n: number): NodePair[] {
  const nodes = Array.from({ length: n }, (_, i) => i)
  if (rand() < 0.5) {
    const slow = intIn(rand, 0, n - 1)
    return crossPairs(
      [slow],
      nodes.filter((i) => i !== slow),
    )
  }
  const all = allPairs(nodes)
  const k = intIn(rand, 1, all.length)
  return shuffled(rand, all)
    .slice(0, k)
    .sort((p, q) => p[0] - q[0] || p[1] - q[1])
}

/**
 * Builds the schedule. Deterministic: the same options give the same actions. Each enabled
 * kind of the fault lane comes up once per cycle (in shuffled order), so a run long enough for
 * as many episodes as kinds exercises every kind.
 */
export function makeSchedule(opts: ScheduleOptions): Schedule {
  const { seed, durationMs: d, nodes: n } = opts
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError('nodes must be an integer >= 1')
  if (!(Number.isFinite(d) && d > 0)) throw new RangeError('duration must be > 0')
  const wanted = FAULT_KINDS.filter((k) => opts.faults.includes(k))
  const enabled = wanted.filter((k) => applicable(k, n))
  const skipped = wanted.filter((k) => !applicable(k, n))
  const warmupMs = Math.min(10_000, Math.max(2_000, Math.floor(d * 0.07)))
  const quietMs = Math.max(5_000, Math.floor(d * 0.12))
  const finalHealAt = Math.max(warmupMs, d - quietMs)
  const actions: ScheduledAction[] = []
  let episode = 0
  const add = (at: number, ep: number, kind: FaultKind, lane: Lane, heal: boolean, action: FaultAction): void => {
    actions.push({ at, episode: ep, kind, lane, heal, action })
  }

  // Fault lane: one episode at a time.
  const laneKinds = enabled.filter((k): k is LaneFault => (LANE_FAULTS as readonly string[]).includes(k))
  if (laneKinds.length > 0) {
    const rand = streamOf(seed, 'schedule fault lane')
    let cycle: LaneFault[] = []
    let t = warmupMs
    let holdingAcks = 0
    let lastCutOff = false
    for (;;) {
      if (cycle.length === 0) cycle = shuffled(rand, laneKinds)
      const kind = cycle[0] as LaneFault
      const node = intIn(rand, 0, n - 1)
      let hold: number
      let fault: FaultAction
      let heal: FaultAction
      if (kind === 'partition') {
        hold = span(rand, 2_000, 12_000, d, 0.1)
        fault = partitionOf(rand, n)
        heal = { op: 'unpartition', pairs: fault.pairs }
      } else if (kind === 'kill') {
        hold = span(rand, 500, 5_000, d, 0.06)
        fault = { op: 'kill', node }
        heal = { op: 'restart', node }
      } else if (kind === 'stop') {
        // Long stops (past the 10 s ping timeout, in long runs) make peers drop the frozen link.
        hold = span(rand, 1_500, 14_000, d, 0.08)
        fault = { op: 'stop', node }
        heal = { op: 'cont', node }
      } else if (kind === 'wipe') {
        hold = span(rand, 500, 3_000, d, 0.05)
        fault = { op: 'wipe', node }
        heal = { op: 'recover', node }
      } else if (kind === 'wipe-peers-down') {
        // Long enough for several recovery timeout warnings (the harness's nodes warn after 1 s):
        // time must never end the wait.
        hold = span(rand, 3_000, 20_000, d, 0.06)
        fault = { op: 'wipe-peers-down', node }
        heal = { op: 'peers-return', node }
      } else if (kind === 'rotate-partitioned') {
        // Stopping, rotating and restarting the node takes a few seconds of the hold.
        hold = span(rand, 4_000, 12_000, d, 0.1)
        const pairs = isolate(node, n)
        fault = { op: 'rotate-partitioned', node, mode: rand() < 0.5 ? 'cut' : 'blackhole', pairs }
        heal = { op: 'unpartition', pairs }
      } else if (kind === 'revoke-partitioned') {
        hold = span(rand, 3_000, 10_000, d, 0.1)
        const pairs = isolate(node, n)
        const mode = rand() < 0.5 ? 'cut' : 'blackhole'
        const authority = rand() < 0.5 ? 'self' : 'admin'
        const via = rand() < 0.5 ? 'cut-off' : 'other'
        fault = { op: 'revoke-partitioned', node, mode, authority, via, pick: rand(), pairs }
        heal = { op: 'unpartition', pairs }
      } else {
        hold = span(rand, 2_000, 8_000, d, 0.08)
        // Variants alternate (the first of each pair at random), so two episodes have both.
        const first = rand() < 0.5
        const cutOff: boolean = holdingAcks++ % 2 === 0 ? first : !lastCutOff
        lastCutOff = cutOff
        // N = 1 up to every peer: an acknowledged write survives the loss whatever N was.
        const acks = intIn(rand, 1, n - 1)
        fault = { op: 'wipe-holding-acks', node, cutOff, acks, pairs: cutOff ? isolate(node, n) : [] }
        heal = { op: 'recover-holding-acks', node, pairs: fault.pairs }
      }
      const settle = span(rand, 2_500, 8_000, d, 0.08)
      if (t + hold + settle > finalHealAt) break
      cycle.shift()
      episode++
      add(t, episode, kind, 'fault', false, fault)
      add(t + hold, episode, kind, 'fault', true, heal)
      t += hold + settle
    }
  }

  // Background lanes: overlap the fault lane and each other.
  if (enabled.includes('latency')) {
    const rand = streamOf(seed, 'schedule latency lane')
    let t = warmupMs + span(rand, 0, 5_000, d, 0.05)
    for (;;) {
      const hold = span(rand, 3_000, 20_000, d, 0.15)
      const gap = span(rand, 2_000, 20_000, d, 0.12)
      if (t + hold > finalHealAt) break
      const pairs = shapedPairs(rand, n)
      const latencyMs = intIn(rand, 10, 150)
      const jitterMs = intIn(rand, 0, 60)
      // Slow but not crippling: at the low end a full resync of a few MB takes a minute.
      const bytesPerSec = rand() < 0.5 ? null : intIn(rand, 128, 2048) * 1024
      episode++
      add(t, episode, 'latency', 'latency', false, { op: 'shape', pairs, latencyMs, jitterMs, bytesPerSec })
      add(t + hold, episode, 'latency', 'latency', true, { op: 'unshape', pairs })
      t += hold + gap
    }
  }
  if (enabled.includes('hostile')) {
    const rand = streamOf(seed, 'schedule hostile lane')
    let t = warmupMs + span(rand, 0, 5_000, d, 0.05)
    for (;;) {
      const hold = span(rand, 3_000, 15_000, d, 0.12)
      const gap = span(rand, 2_000, 20_000, d, 0.12)
      if (t + hold > finalHealAt) break
      // Two targets when possible: equivocations are split between them.
      const targets = sorted(
        shuffled(
          rand,
          Array.from({ length: n }, (_, i) => i),
        ).slice(0, Math.min(2, n)),
      )
      episode++
      add(t, episode, 'hostile', 'hostile', false, { op: 'hostile', targets })
      add(t + hold, episode, 'hostile', 'hostile', true, { op: 'calm' })
      t += hold + gap
    }
  }

  const laneOrder: Record<Lane, number> = { fault: 0, latency: 1, hostile: 2 }
  actions.sort((a, b) => a.at - b.at || laneOrder[a.lane] - laneOrder[b.lane] || a.episode - b.episode)
  actions.push({ at: finalHealAt, episode: 0, kind: 'final', lane: 'fault', heal: true, action: { op: 'heal-all' } })
  return { actions, warmupMs, finalHealAt, skipped }
}

/** One line describing an action, for progress output and reports. */
export function describeAction(a: FaultAction): string {
  const pairs = (ps: readonly NodePair[]): string => ps.map(([x, y]) => `${x}-${y}`).join(' ')
  switch (a.op) {
    case 'partition':
      return (
        `partition (${a.shape}, ${a.mode}) ` +
        `${a.groups.map((g) => `[${g.join(',')}]`).join(a.shape === 'ring' ? '' : ' | ')}: ` +
        (a.mode === 'one-way' ? `drop ${a.pairs.map(([x, y]) => `${x}→${y}`).join(' ')}` : `cut ${pairs(a.pairs)}`)
      )
    case 'unpartition':
      return `heal partition: ${pairs(a.pairs)}`
    case 'kill':
      return `SIGKILL node ${a.node}`
    case 'restart':
      return `restart node ${a.node}`
    case 'stop':
      return `SIGSTOP node ${a.node}`
    case 'cont':
      return `SIGCONT node ${a.node}`
    case 'wipe':
      return `SIGKILL node ${a.node} and wipe its database (key kept)`
    case 'recover':
      return `restart wiped node ${a.node}`
    case 'wipe-peers-down':
      return (
        `SIGKILL every peer of node ${a.node}, then node ${a.node}; ` +
        'wipe its database (key kept) and restart it alone'
      )
    case 'peers-return':
      return `restart the peers of node ${a.node}`
    case 'rotate-partitioned':
      return (
        `cut node ${a.node} off (${a.mode}), stop it, rotate its key (sledlog rotate-key) ` +
        'and start it again as its successor'
      )
    case 'revoke-partitioned':
      return (
        `cut node ${a.node} off (${a.mode}) and revoke a retired key (${a.authority}) through ` +
        (a.via === 'cut-off' ? `node ${a.node}` : 'another node')
      )
    case 'wipe-holding-acks':
      return a.cutOff
        ? `cut node ${a.node} off, write to it with acks=0 and acks=${a.acks}, SIGKILL it and wipe its database`
        : `write to node ${a.node} with acks=${a.acks} and acks=0, SIGKILL it and wipe its database`
    case 'recover-holding-acks':
      return `${a.pairs.length > 0 ? 'restore the links of and ' : ''}restart wiped node ${a.node}`
    case 'shape':
      return (
        `slow links ${pairs(a.pairs)}: ${a.latencyMs} ms ± ${a.jitterMs} ms` +
        (a.bytesPerSec === null ? '' : `, ${Math.round(a.bytesPerSec / 1024)} KiB/s`)
      )
    case 'unshape':
      return `restore links ${pairs(a.pairs)}`
    case 'hostile':
      return `hostile peer attacks node${a.targets.length === 1 ? '' : 's'} ${a.targets.join(', ')}`
    case 'calm':
      return 'hostile peer stops'
    case 'heal-all':
      return 'final heal: every link restored, every node running'
  }
}

/** Parses a `--faults` list: comma-separated kinds, `all`, or `none`. Throws on unknown kinds. */
export function parseFaultList(text: string): FaultKind[] {
  const t = text.trim()
  if (t === 'all') return [...FAULT_KINDS]
  if (t === 'none' || t === '') return []
  const out: FaultKind[] = []
  for (const part of t.split(',')) {
    const k = part.trim()
    if (!(FAULT_KINDS as readonly string[]).includes(k)) {
      throw new RangeError(`unknown fault kind ${JSON.stringify(k)} (known: ${FAULT_KINDS.join(', ')}, or all/none)`)
    }
    if (!out.includes(k as FaultKind)) out.push(k as FaultKind)
  }
  return FAULT_KINDS.filter((k) => out.includes(k))
}
