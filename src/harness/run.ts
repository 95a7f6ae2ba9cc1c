/**
 * A harness run: a cluster of real node processes under a seeded fault schedule and a steady
 * workload, checked while it runs and after a final heal (docs/HARNESS.md).
 *
 * `runHarness(options)` starts the cluster, the workload (appends, ingest, slow subscribers,
 * durable consumers) and the checker, plays the schedule's lanes side by side (faults that take
 * nodes or links away one at a time; link shaping and the hostile peer overlapping them), heals
 * everything, waits for the cluster to converge, checks every invariant on every node's full
 * log, and returns the violations and figures. It never throws for a failed invariant: a run
 * that finds problems returns `ok: false` with the seed and the command line that replays it.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StoredEntry } from '../core/query.js'
import { keyPairFromSeed } from '../core/signing.js'
import { retiredKeyPath, saveKeyFile } from '../store/identity.js'
import { Cluster, eventually, HttpError, type NodeStatus } from './cluster.js'
import { FORGED_MARKER, HOSTILE_TYPES } from './forgery.js'
import { DEFAULT_ATTACKS, HostilePeer, type HostileAttack, type HostileStats } from './hostile-peer.js'
import {
  checkAcked,
  checkConverged,
  checkDelivered,
  checkHostileData,
  checkIngest,
  checkInvariants,
  key,
  logFigures,
  percentile,
  type HostileSpec,
  type IngestAccount,
  type IngestSent,
  type LogEntry,
  type LogFigures,
  type NodeLog,
} from './invariants.js'
import { LogMirror } from './mirror.js'
import { keySeedOf, streamOf } from './random.js'
import { replayCommand, type ReplayOptions } from './report.js'
import { describeResigned, SigLedger } from './sig-ledger.js'
import {
  describeAction,
  FAULT_KINDS,
  makeSchedule,
  type FaultAction,
  type FaultKind,
  type Lane,
  type NodePair,
  type ScheduledAction,
} from './schedule.js'
import { emptyWriterStats, Workload, type WriterStats } from './workload.js'

/** Options of {@link runHarness}. */
export interface HarnessOptions {
  /** Number of nodes (a full mesh). */
  readonly nodes: number
  /** Length of the faulty part of the run, ms (the final convergence and checks come after). */
  readonly durationMs: number
  /** Seed of every random choice: the same seed replays the same schedule and workload. */
  readonly seed: number
  /** Fault kinds to inject. */
  readonly faults: readonly FaultKind[]
  /** Appended events per second per node. */
  readonly rate: number
  /** Ingested events per second per node; default half of `rate`. */
  readonly ingestRate?: number
  /**
   * Ingest bus capacity of every node, in events (`--ingest-capacity`; default 32, so batches
   * overflow it). 0 leaves the node's default (10 000), which the workload never fills.
   */
  readonly ingestBus?: number
  /** Attacks of the hostile peer; default {@link DEFAULT_ATTACKS}. */
  readonly attacks?: readonly HostileAttack[]
  /** Run slow subscribers and durable consumers (default true). */
  readonly readers?: boolean
  /** How often the running checks read every node, ms (default 3000). */
  readonly checkIntervalMs?: number
  /** How long the cluster may take to converge after the final heal, ms (default 90 000). */
  readonly convergeTimeoutMs?: number
  /** Directory for the nodes' data (default: a new temp dir, removed after a passing run). */
  readonly baseDir?: string
  /** Keep the data directory even when the run passes. */
  readonly keepData?: boolean
  /** Receives progress lines (each action, violations as found, the final phase). */
  readonly progress?: (line: string) => void
  /**
   * How a node that lost its disk goes on once peers proved its head (`sledlog node
   * --recovery-mode`): `succession` (the nodes' default) moves it to a successor key, `resume`
   * appends under its old key again, which re-signs the seqs of acks=0 writes no peer held (the
   * harness must catch that). Absent: the flag is not passed and a successor is expected.
   */
  readonly recoveryMode?: 'succession' | 'resume'
}

/** An action as it was executed. */
export interface ExecutedAction {
  /** When it started, ms after the run started (`planned` is when it was scheduled). */
  readonly at: number
  readonly planned: number
  readonly lane: Lane
  readonly kind: FaultKind | 'final'
  readonly episode: number
  readonly heal: boolean
  readonly description: string
  /** How long it took (a wipe waits for replication, a restart for the node to listen). */
  readonly ms: number
  readonly error?: string
}

/** A violation and when it was first seen. */
export interface Violation {
  /** ms after the run started; null for violations found by the final checks. */
  readonly at: number | null
  readonly text: string
}

/** Everything a run measured. */
export interface HarnessFigures {
  /** Fault episodes executed, per kind; partitions also per shape and per mode (`partition one-way`…). */
  readonly faults: Readonly<Record<string, number>>
  readonly writers: WriterStats
  readonly ingest: { readonly nodes: readonly IngestAccount[] }
  readonly subscribers: {
    readonly count: number
    readonly delivered: number
    readonly lagged: number
    readonly connections: number
    readonly redelivered: number
    readonly holes: number
  }
  readonly consumers: {
    readonly count: number
    readonly delivered: number
    readonly redelivered: number
    readonly acked: number
    readonly connections: number
    readonly resets: number
  }
  readonly hostile: (HostileStats & { readonly ownHeld: number }) | null
  readonly succession: SuccessionFigures
  /** Guard rejections summed over the nodes' final status (counters restart with a node). */
  readonly rejected: Readonly<Record<string, number>>
  readonly checks: { readonly rounds: number; readonly readErrors: number }
  readonly final: LogFigures & {
    /** Entries in the converged log (of the first node). */
    readonly entries: number
    readonly sleds: number
    readonly acked: number
    readonly forgedAccepted: number
    readonly crashes: number
  }
  readonly convergence: {
    /** Heals whose convergence was measured. */
    readonly heals: number
    readonly p50Ms: number | null
    readonly p99Ms: number | null
    readonly maxMs: number | null
    /** Heals after which the next fault came (or the run ended) before the cluster converged. */
    readonly unfinished: number
    /**
     * Heals after which the cluster had not converged within 60 s, with no new fault in the
     * way: not in the percentiles (their time is unknown), so reported on their own.
     */
    readonly timedOut: number
    /** From the final heal until identical logs on every node; null when it never happened. */
    readonly finalMs: number | null
  }
}

/** Key rotations, revocations and writes to nodes about to lose their disk (issue 16). */
export interface SuccessionFigures {
  /** Planned rotations (sledlog rotate-key) done. */
  rotations: number
  /** Revocations appended (sledlog revoke-key), by authority. */
  revocations: { self: number; admin: number }
  /** Times a node was seen running as a new sled (rotations and successions after a lost disk). */
  successors: number
  /** Retired sleds and entries read `retired: true` in the converged log. */
  retiredSleds: number
  retiredEntries: number
  /** Writes to a node before it lost its disk (`wipe-holding-acks`), per answer. */
  holding: {
    /** Entries acknowledged with acks=0 (the node's durability only). */
    zero: number
    /** Entries acknowledged with acks=N >= 1 (peers proved they hold them). */
    acked: number
    /** acks=N requests answered ACKS_TIMEOUT (stored on the node, not held by N peers in time). */
    timeouts: number
    /** acks=N requests refused before signing (NOT_ENOUGH_PEERS). */
    refused: number
    /** Other failures. */
    failed: number
  }
}

function emptySuccessionFigures(): SuccessionFigures {
  return {
    rotations: 0,
    revocations: { self: 0, admin: 0 },
    successors: 0,
    retiredSleds: 0,
    retiredEntries: 0,
    holding: { zero: 0, acked: 0, timeouts: 0, refused: 0, failed: 0 },
  }
}

/** The outcome of a run. */
export interface HarnessResult {
  /** True when no invariant was violated. */
  readonly ok: boolean
  readonly seed: number
  /** The options that shaped the schedule and the workload (what {@link replayCommand} replays). */
  readonly options: Omit<ReplayOptions, 'seed'>
  /** The command line that replays this run. */
  readonly replay: string
  readonly violations: readonly Violation[]
  readonly figures: HarnessFigures
  readonly actions: readonly ExecutedAction[]
  /** Wall time of the whole run, ms. */
  readonly elapsedMs: number
  /** Where the nodes' data was kept (failed runs and `keepData`), else null. */
  readonly dataDir: string | null
  /** Stderr tails of the nodes, for failed runs. */
  readonly nodeLogs: string | null
}

type NodeState = 'up' | 'down' | 'stopped' | 'restarting' | 'quiescing'

interface LinkState {
  /** `blackhole-forward`: the dialer's bytes are dropped; `-backward`: the listener's. */
  cut: 'cut' | 'blackhole' | 'blackhole-forward' | 'blackhole-backward' | null
  shape: { latencyMs: number; jitterMs: number; bytesPerSec: number | null } | null
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)))

/** A recovering node warns after this long (`--recovery-timeout`): a warning, never a release. */
const RECOVERY_WARN_MS = 1000
/** Longest wait for a node's entries to reach its peers before its disk is wiped. */
const REPLICATE_BEFORE_WIPE_MS = 15_000
/** A heal whose convergence takes longer than this is counted unfinished. */
const PROBE_LIMIT_MS = 60_000
/** Longest wait for subscribers and consumers to catch up after the final convergence. */
const READERS_CATCH_UP_MS = 60_000
/** Longest wait for a wiped node, once restarted with its peers, to prove its head and move to a successor. */
const SUCCESSION_WITHIN_MS = 45_000
/** How long an acks=N write to a node cut off from every peer waits before ACKS_TIMEOUT. */
const CUT_OFF_ACK_TIMEOUT_MS = 1500
/** Longest wait for a linked node to have the peers its acks=N writes ask for. */
const LINK_WITHIN_MS = 20_000
/** Batches of each kind (acks=0, acks=N) written to a node before it loses its disk. */
const HOLDING_BATCHES = 3

/** Runs the harness; see the module comment. */
export async function runHarness(options: HarnessOptions): Promise<HarnessResult> {
  return new HarnessRun(options).run()
}

/** One run. Lifecycle: `run()` once. */
class HarnessRun {
  readonly #o: HarnessOptions
  readonly #ingestBus: number
  readonly #ingestRate: number
  readonly #attacks: readonly HostileAttack[]
  readonly #violations = new Map<string, Violation>()
  readonly #actions: ExecutedAction[] = []
  readonly #convergence: number[] = []
  readonly #faultCounts: Record<string, number> = {}
  readonly #links = new Map<string, LinkState>()
  readonly #probes: Promise<void>[] = []
  #cluster: Cluster | null = null
  #workload: Workload | null = null
  #hostile: HostilePeer | null = null
  #campaign: { abort: AbortController; done: Promise<void> } | null = null
  #mirrors: LogMirror[] = []
  #state: NodeState[] = []
  #ledger = new SigLedger()
  /** How many of the cluster's acknowledged appends the ledger has seen. */
  #ledgerFed = 0
  /** Acknowledged acks=0 appends (`sled:seq`) whose only copy was on a disk that was lost. */
  readonly #lostWithDisk = new Set<string>()
  readonly #succession = emptySuccessionFigures()
  /** Wiped nodes that must move to a successor: the sled each lost its disk as. */
  readonly #successorDue = new Map<number, string>()
  /** The admin key every node is started with (`--admin-key`) and the file revocations are signed from. */
  #adminKeyFile = ''
  #t0 = 0
  #faultEpoch = 0
  #unfinished = 0
  #timedOut = 0
  #rounds = 0
  #readErrors = 0
  #finishing = false
  #checking = true

  constructor(o: HarnessOptions) {
    if (!(Number.isInteger(o.nodes) && o.nodes >= 1)) throw new RangeError('nodes must be an integer >= 1')
    if (!(o.durationMs > 0)) throw new RangeError('duration must be > 0')
    if (!(o.rate >= 0)) throw new RangeError('rate must be >= 0')
    this.#o = o
    this.#ingestBus = o.ingestBus ?? 32
    this.#ingestRate = o.ingestRate ?? o.rate / 2
    this.#attacks = o.attacks ?? DEFAULT_ATTACKS
  }

  get #elapsed(): number {
    return Date.now() - this.#t0
  }

  #say(line: string): void {
    const t = this.#t0 === 0 ? '' : `[${(this.#elapsed / 1000).toFixed(1).padStart(6)}s] `
    this.#o.progress?.(`${t}${line}`)
  }

  #violation(text: string, final = false): void {
    if (this.#violations.has(text)) return
    this.#violations.set(text, { at: final ? null : this.#elapsed, text })
    if (!final) this.#say(`VIOLATION ${text}`)
  }

  get #cl(): Cluster {
    if (this.#cluster === null) throw new Error('cluster not started')
    return this.#cluster
  }

  get #wl(): Workload {
    if (this.#workload === null) throw new Error('workload not started')
    return this.#workload
  }

  async run(): Promise<HarnessResult> {
    const started = Date.now()
    const o = this.#o
    const schedule = makeSchedule({ seed: o.seed, durationMs: o.durationMs, nodes: o.nodes, faults: o.faults })
    for (const k of schedule.skipped) this.#say(`fault kind ${k} does not apply to ${o.nodes} node(s): skipped`)
    const dir = o.baseDir ?? (await mkdtemp(join(tmpdir(), 'sledlog-harness-')))
    // The cluster's admin key, from the seed like the nodes' keys: its revocations retire a sled.
    const admin = keyPairFromSeed(keySeedOf(o.seed, 'admin'))
    this.#adminKeyFile = join(dir, 'admin.key')
    if (!existsSync(this.#adminKeyFile)) await saveKeyFile(this.#adminKeyFile, admin)
    const cluster = new Cluster({
      adminKeys: [admin.sled],
      ...(o.recoveryMode === undefined ? {} : { extraArgs: ['--recovery-mode', o.recoveryMode] }),
      size: o.nodes,
      baseDir: dir,
      topology: 'mesh',
      random: streamOf(o.seed, 'link jitter'),
      keySeed: (i) => keySeedOf(o.seed, `node ${i}`),
      recoveryTimeoutMs: RECOVERY_WARN_MS,
      ...(this.#ingestBus > 0 ? { env: { SLEDLOG_INGEST_CAPACITY: String(this.#ingestBus) } } : {}),
    })
    this.#cluster = cluster
    this.#state = Array.from({ length: o.nodes }, () => 'up')
    this.#mirrors = Array.from({ length: o.nodes }, (_, i) => new LogMirror(`node ${i}`))
    let figures: HarnessFigures | null = null
    let nodeLogs: string | null = null
    let checker: Promise<void> = Promise.resolve()
    try {
      o.progress?.(`starting ${o.nodes} node(s) in ${dir} (seed ${o.seed})`)
      await cluster.start()
      for (const key of cluster.proxies.keys()) this.#links.set(key, { cut: null, shape: null })
      this.#hostile = o.faults.includes('hostile')
        ? new HostilePeer({ seed: o.seed, random: streamOf(o.seed, 'hostile'), attacks: this.#attacks })
        : null
      const equivocators = new Set<string>(this.#hostile === null ? [] : [this.#hostile.keys.main.sled])
      // The attacker signs two versions of its seqs on purpose; every other sled signs each seq once.
      this.#ledger = new SigLedger(equivocators)
      this.#workload = new Workload({
        cluster,
        rate: o.rate,
        ingestRate: this.#ingestRate,
        ingestBatch: [1, Math.max(2, this.#ingestBus > 0 ? this.#ingestBus * 2 : 64)],
        random: (name) => streamOf(o.seed, `workload ${name}`),
        writable: (i) => this.#state[i] === 'up',
        readable: (i) => this.#state[i] === 'up' || this.#state[i] === 'quiescing',
        subscribers: o.readers ?? true,
        consumers: o.readers ?? true,
        equivocators,
      })
      this.#t0 = Date.now()
      this.#say(`cluster up: ${cluster.nodes.map((n) => `${n.name} ${n.sled.slice(0, 12)}`).join(', ')}`)
      this.#wl.start()
      checker = this.#checkLoop(equivocators)
      await this.#playLanes(schedule.actions)
      await sleep(this.#t0 + o.durationMs - Date.now())
      figures = await this.#finish(equivocators)
    } catch (err) {
      this.#violation(`harness error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, true)
    } finally {
      this.#checking = false
      this.#finishing = true
      await checker
      await this.#stopHostile()
      await this.#workload?.stopWriters()
      await this.#workload?.stopReaders()
      await Promise.all(this.#probes)
      if (this.#violations.size > 0) nodeLogs = cluster.describe(3000)
      await cluster.stop()
    }
    const ok = this.#violations.size === 0
    const keep = !ok || o.keepData === true
    if (!keep && o.baseDir === undefined) await rm(dir, { recursive: true, force: true })
    const normalized = {
      nodes: o.nodes,
      durationMs: o.durationMs,
      faults: FAULT_KINDS.filter((k) => o.faults.includes(k)),
      rate: o.rate,
      ingestRate: this.#ingestRate,
      ingestBus: this.#ingestBus,
      attacks: this.#attacks,
      ...(o.checkIntervalMs === undefined ? {} : { checkIntervalMs: o.checkIntervalMs }),
      ...(o.convergeTimeoutMs === undefined ? {} : { convergeTimeoutMs: o.convergeTimeoutMs }),
      ...(o.recoveryMode === undefined ? {} : { recoveryMode: o.recoveryMode }),
    }
    return {
      ok,
      seed: o.seed,
      options: normalized,
      replay: replayCommand({ seed: o.seed, ...normalized }),
      violations: [...this.#violations.values()],
      figures: figures ?? this.#figures([], [], null, []),
      actions: this.#actions,
      elapsedMs: Date.now() - started,
      dataDir: keep ? dir : null,
      nodeLogs,
    }
  }

  // ---- the schedule ----

  async #playLanes(actions: readonly ScheduledAction[]): Promise<void> {
    const lanes = new Map<Lane, ScheduledAction[]>()
    for (const a of actions) {
      const list = lanes.get(a.lane) ?? []
      list.push(a)
      lanes.set(a.lane, list)
    }
    await Promise.all(
      [...lanes.values()].map(async (list) => {
        for (const a of list) {
          await sleep(this.#t0 + a.at - Date.now())
          await this.#execute(a)
        }
      }),
    )
  }

  async #execute(a: ScheduledAction): Promise<void> {
    const start = Date.now()
    const description = describeAction(a.action)
    this.#say(description)
    if (!a.heal) {
      this.#faultCounts[a.kind] = (this.#faultCounts[a.kind] ?? 0) + 1
      if (a.action.op === 'partition') {
        for (const k of [`partition ${a.action.shape}`, `partition ${a.action.mode}`])
          this.#faultCounts[k] = (this.#faultCounts[k] ?? 0) + 1
      }
      if (a.lane === 'fault') this.#faultEpoch++
    }
    let error: string | undefined
    try {
      await this.#apply(a.action)
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
      this.#violation(`${description} failed: ${error.split('\n')[0] ?? error}`)
    }
    this.#actions.push({
      at: start - this.#t0,
      planned: a.at,
      lane: a.lane,
      kind: a.kind,
      episode: a.episode,
      heal: a.heal,
      description,
      ms: Date.now() - start,
      ...(error === undefined ? {} : { error }),
    })
    if (a.heal && a.lane !== 'hostile' && error === undefined && a.action.op !== 'heal-all')
      this.#probes.push(this.#probe())
  }

  async #apply(a: FaultAction): Promise<void> {
    const c = this.#cl
    switch (a.op) {
      case 'partition':
        this.#cutPairs(a.pairs, a.mode)
        return
      case 'unpartition':
        this.#cutPairs(a.pairs, null)
        return
      case 'shape':
      case 'unshape':
        for (const [x, y] of a.pairs) {
          const shape =
            a.op === 'shape' ? { latencyMs: a.latencyMs, jitterMs: a.jitterMs, bytesPerSec: a.bytesPerSec } : null
          for (const key of [`${x}>${y}`, `${y}>${x}`]) this.#setLink(key, (l) => (l.shape = shape))
        }
        return
      case 'kill':
        this.#state[a.node] = 'down'
        await c.kill(a.node, 'SIGKILL')
        return
      case 'restart':
        this.#state[a.node] = 'restarting'
        await c.revive(a.node)
        this.#state[a.node] = 'up'
        return
      case 'stop':
        this.#state[a.node] = 'stopped'
        await c.kill(a.node, 'SIGSTOP')
        return
      case 'cont':
        await c.kill(a.node, 'SIGCONT')
        this.#state[a.node] = 'up'
        return
      case 'wipe':
        await this.#wipe(a.node)
        return
      case 'recover':
        await this.#restartWiped(a.node)
        return
      case 'wipe-peers-down':
        await this.#wipeAlone(a.node)
        return
      case 'peers-return':
        await this.#peersReturn(a.node)
        this.#expectSuccessor(a.node)
        return
      case 'rotate-partitioned':
        this.#cutPairs(a.pairs, a.mode)
        await this.#rotate(a.node)
        return
      case 'revoke-partitioned':
        await this.#revokePartitioned(a)
        return
      case 'wipe-holding-acks':
        await this.#wipeHoldingAcks(a)
        return
      case 'recover-holding-acks':
        this.#cutPairs(a.pairs, null)
        await this.#restartWiped(a.node)
        return
      case 'hostile':
        this.#startHostile(a.targets)
        return
      case 'calm':
        await this.#stopHostile()
        return
      case 'heal-all':
        await this.#healAll()
        return
    }
  }

  /** Restarts a node that lost its disk; it must go on under a successor. */
  async #restartWiped(i: number): Promise<void> {
    this.#state[i] = 'restarting'
    await this.#cl.restart(i)
    this.#state[i] = 'up'
    this.#expectSuccessor(i)
  }

  /** Cuts (or with `null` restores) the links between each pair, both ways. */
  #cutPairs(pairs: readonly NodePair[], mode: 'cut' | 'blackhole' | 'one-way' | null): void {
    for (const [x, y] of pairs) {
      if (mode === 'one-way') {
        // x's bytes do not reach y: on the link x dials they flow forward, on y's backward.
        this.#setLink(`${x}>${y}`, (l) => (l.cut = 'blackhole-forward'))
        this.#setLink(`${y}>${x}`, (l) => (l.cut = 'blackhole-backward'))
      } else for (const key of [`${x}>${y}`, `${y}>${x}`]) this.#setLink(key, (l) => (l.cut = mode))
    }
  }

  #setLink(key: string, change: (l: LinkState) => void): void {
    const state = this.#links.get(key)
    const proxy = this.#cl.proxies.get(key)
    if (state === undefined || proxy === undefined) return
    const cutBefore = state.cut
    change(state)
    // A partition and a slow link can overlap. Healing resets the connections that lost bytes,
    // so only a change of the partition heals; a new or lifted shape on a blackholed link must
    // not turn its silent loss into a reset.
    if (state.cut !== cutBefore) proxy.heal()
    proxy.latency(state.shape?.latencyMs ?? 0, state.shape?.jitterMs ?? 0)
    proxy.bandwidth(state.shape?.bytesPerSec ?? null)
    if (state.cut === cutBefore) return
    if (state.cut === 'cut') proxy.cut()
    else if (state.cut === 'blackhole') proxy.blackhole()
    else if (state.cut === 'blackhole-forward') proxy.blackhole('forward')
    else if (state.cut === 'blackhole-backward') proxy.blackhole('backward')
  }

  /**
   * Disk loss: stop writing to the node, wait until its peers hold everything it wrote (so
   * nothing acknowledged dies with the disk: the harness tests recovery, not the absence of
   * replicas), then SIGKILL it and delete its database, keeping its key.
   */
  async #wipe(i: number): Promise<void> {
    await this.#quiesceReplicated(i)
    await this.#loseDisk(i)
  }

  /**
   * Disk loss with every peer down: as {@link #wipe}, but every other node is SIGKILLed first,
   * and the node restarts alone. It must refuse writes (503 RECOVERING) until they are back:
   * with no peer to prove its head, appending would re-sign what they hold.
   */
  async #wipeAlone(i: number): Promise<void> {
    const c = this.#cl
    await this.#quiesceReplicated(i)
    for (const n of c.nodes) {
      if (n.index === i || !n.running) continue
      this.#state[n.index] = 'down'
      await c.kill(n.index, 'SIGKILL')
    }
    await this.#loseDisk(i)
    this.#state[i] = 'restarting'
    await c.restart(i)
    this.#state[i] = 'up'
    const r = (await c.node(i).status()).recovery
    if (r.state !== 'waiting') this.#violation(`node ${i} lost its disk with every peer down but is not recovering`)
  }

  /** Heals {@link #wipeAlone}: the node must still be waiting, then every peer restarts. */
  async #peersReturn(i: number): Promise<void> {
    const c = this.#cl
    try {
      const r = (await c.node(i).status()).recovery
      if (r.state !== 'waiting') this.#violation(`node ${i} ended its recovery (${r.state}) while every peer was down`)
    } catch (err) {
      this.#violation(`node ${i} did not answer while recovering: ${(err as Error).message}`)
    }
    for (const n of c.nodes) {
      if (n.index === i || n.running) continue
      this.#state[n.index] = 'restarting'
      await c.revive(n.index)
      this.#state[n.index] = 'up'
    }
  }

  // ---- key succession under partitions (issue 16) ----

  /**
   * Planned rotation: stops writing to node `i`, stops it gracefully, runs `sledlog rotate-key`
   * on its data directory as an operator would, and starts it again: it must come up as the
   * successor the command printed.
   */
  async #rotate(i: number): Promise<void> {
    const c = this.#cl
    const node = c.node(i)
    this.#state[i] = 'quiescing'
    await this.#wl.idle(i)
    this.#state[i] = 'down'
    await c.kill(i, 'SIGTERM')
    try {
      const r = await c.cli(['rotate-key', '--data', node.dataDir])
      if (r.code !== 0) throw new Error(`sledlog rotate-key exited with ${r.code}: ${r.stderr.trim().slice(-600)}`)
      const successor = r.stdout.trim()
      this.#succession.rotations++
      this.#say(`node ${i} rotated ${node.sled.slice(0, 12)} -> ${successor.slice(0, 12)}`)
    } finally {
      this.#state[i] = 'restarting'
      await c.revive(i)
      this.#state[i] = 'up'
    }
  }

  /** Retired sleds of the cluster's nodes (every sled a node ran as before its current one). */
  #retiredSleds(): Array<{ readonly owner: number; readonly sled: string }> {
    return this.#cl.nodes.flatMap((n) => n.sleds.slice(0, -1).map((sled) => ({ owner: n.index, sled })))
  }

  /**
   * Cuts node `a.node` off and revokes a retired key while it is cut off, through it or through
   * another node, so the two sides read different retirement flags until the heal. The target
   * is a sled some node ran as before (rotations and successions leave them); when there is none
   * yet, node `a.node` is rotated first, while still linked. A self revocation needs the
   * retired key file (`retired-SLED.key`, kept by the rotation); without one it is signed as
   * the admin.
   */
  async #revokePartitioned(a: Extract<FaultAction, { op: 'revoke-partitioned' }>): Promise<void> {
    const c = this.#cl
    if (this.#retiredSleds().length === 0) await this.#rotate(a.node)
    this.#cutPairs(a.pairs, a.mode)
    const targets = this.#retiredSleds()
    const target = targets[Math.min(targets.length - 1, Math.floor(a.pick * targets.length))]
    if (target === undefined) throw new Error('no retired sled to revoke')
    const others = c.nodes.filter((n) => n.index !== a.node && this.#state[n.index] === 'up')
    const via =
      a.via === 'cut-off' || others.length === 0
        ? c.node(a.node)
        : (others[Math.floor(a.pick * others.length)] ?? c.node(a.node))
    const keyFile = retiredKeyPath(c.node(target.owner).dataDir, target.sled)
    const authority = a.authority === 'self' && existsSync(keyFile) ? 'self' : 'admin'
    // From a seq at or a little below its last one: entries it holds turn retired.
    const head = (await via.status()).heads[target.sled] ?? 0
    const fromSeq = Math.max(1, head - Math.floor(a.pick * 10))
    const r = await c.cli([
      'revoke-key',
      '--url',
      via.url,
      '--sled',
      target.sled,
      '--from-seq',
      String(fromSeq),
      ...(authority === 'self' ? ['--key-file', keyFile] : ['--admin-key-file', this.#adminKeyFile]),
    ])
    if (r.code !== 0) throw new Error(`sledlog revoke-key exited with ${r.code}: ${r.stderr.trim().slice(-600)}`)
    const entry = JSON.parse(r.stdout.trim()) as StoredEntry
    // The revocation is an entry the node signed and acknowledged like any append.
    c.acked.push({ sled: entry.sled, seq: entry.seq, sig: entry.sig, node: via.name, acks: 0 })
    this.#succession.revocations[authority]++
    this.#say(
      `${authority} revocation of ${target.sled.slice(0, 12)} (node ${target.owner}'s old key) from seq ${fromSeq} ` +
        `appended by ${via.name} as ${entry.sled.slice(0, 12)}:${entry.seq}`,
    )
  }

  /**
   * Disk loss of a node holding writes no peer has (see the `wipe-holding-acks` action). The
   * workload leaves the node and its entries reach its peers first, so what dies with the disk
   * is exactly what this writes: acks=0 entries the node alone holds when it is killed are
   * recorded as lost with the disk (allowed); an acks=N entry must never be (lost otherwise).
   */
  async #wipeHoldingAcks(a: Extract<FaultAction, { op: 'wipe-holding-acks' }>): Promise<void> {
    const i = a.node
    await this.#quiesceReplicated(i)
    if (a.cutOff) this.#cutPairs(a.pairs, 'cut')
    else await this.#linkedTo(i, a.acks)
    for (let k = 0; k < HOLDING_BATCHES; k++) {
      await this.#holdingWrite(i, 0, a.cutOff)
      await this.#holdingWrite(i, a.acks, a.cutOff)
    }
    await this.#loseDisk(i, true)
  }

  /**
   * Waits until node `i` has `n` configured peers linked, so acks=n writes can be acknowledged: a
   * node that just moved to a successor key links to its peers again. Not a violation when it
   * does not (the writes are then refused and counted): liveness is measured by convergence.
   */
  async #linkedTo(i: number, n: number): Promise<void> {
    const node = this.#cl.node(i)
    try {
      await eventually(async () => (await node.status()).acks.connectedPeers >= n, LINK_WITHIN_MS, { intervalMs: 200 })
    } catch {
      this.#say(
        `node ${i} did not have ${n} peers linked within ${LINK_WITHIN_MS / 1000} s: acks=${n} writes will wait`,
      )
    }
  }

  /**
   * One batch to node `i` with `acks`, its answer counted; an acknowledged acks>=1 write while
   * cut off is a violation.
   */
  async #holdingWrite(i: number, acks: number, cutOff: boolean): Promise<void> {
    const node = this.#cl.node(i)
    const h = this.#succession.holding
    const events = [1, 2].map((k) => ({ type: 'harness.held', payload: { node: i, acks, k } }))
    try {
      const entries = await node.append(events, {
        acks,
        ...(acks > 0 ? { ackTimeoutMs: cutOff ? CUT_OFF_ACK_TIMEOUT_MS : 10_000 } : {}),
      })
      if (acks === 0) h.zero += entries.length
      else {
        h.acked += entries.length
        if (cutOff)
          this.#violation(
            `node ${i} acknowledged an acks=${acks} write (${entries.map((e) => e.seq).join(', ')}) ` +
              'while cut off from every peer',
          )
      }
    } catch (err) {
      const code = err instanceof HttpError ? err.code : undefined
      if (acks > 0 && code === 'ACKS_TIMEOUT') h.timeouts++
      else if (acks > 0 && code === 'NOT_ENOUGH_PEERS') h.refused++
      else {
        h.failed++
        this.#say(`acks=${acks} write to node ${i} failed: ${(err as Error).message.split('\n')[0]}`)
      }
    }
  }

  /**
   * Node `i` was just killed and is about to lose its disk: its acknowledged acks=0 appends that
   * no other node holds now (by the heads of every node that answers) had their only copy there.
   */
  async #noteLostWithDisk(i: number): Promise<void> {
    const c = this.#cl
    const node = c.node(i)
    const held = new Map<string, number>()
    for (const peer of c.nodes) {
      if (peer.index === i || this.#state[peer.index] !== 'up') continue
      try {
        for (const [sled, h] of Object.entries((await peer.status()).heads))
          held.set(sled, Math.max(held.get(sled) ?? -1, h))
      } catch {
        // it holds nothing we can count on
      }
    }
    let n = 0
    for (const a of c.acked) {
      if (a.node !== node.name || (a.acks ?? 0) > 0 || !node.sleds.includes(a.sled)) continue
      if (a.seq > (held.get(a.sled) ?? -1) && !this.#lostWithDisk.has(key(a))) {
        this.#lostWithDisk.add(key(a))
        n++
      }
    }
    if (n > 0) this.#say(`node ${i} loses its disk holding ${n} acks=0 entr${n === 1 ? 'y' : 'ies'} no peer has`)
  }

  /**
   * A wiped node was restarted with its peers: once they proved its head it must go on under a
   * successor key (`--recovery-mode succession`, the default), never its old one. Checked in the
   * background, like convergence.
   */
  #expectSuccessor(i: number): void {
    const old = this.#successorDue.get(i)
    if (this.#o.recoveryMode === 'resume' || old === undefined) return
    const node = this.#cl.node(i)
    const epoch = this.#faultEpoch
    const moved = async (): Promise<boolean> => {
      const st = await node.status()
      return st.recovery.state !== 'waiting' && node.sled !== old
    }
    const check = async (): Promise<void> => {
      try {
        await eventually(async () => (this.#finishing && !this.#checking) || (await moved()), SUCCESSION_WITHIN_MS, {
          intervalMs: 250,
        })
        if (node.sled !== old) this.#successorDue.delete(i)
      } catch {
        // Another fault may have hit it meanwhile: then the final check decides.
        if (this.#faultEpoch !== epoch) return
        this.#successorDue.delete(i)
        this.#violation(
          `node ${i} lost its disk as ${old.slice(0, 12)} but did not go on under a successor ` +
            `within ${SUCCESSION_WITHIN_MS / 1000} s of its restart with its peers`,
        )
      }
    }
    this.#probes.push(check())
  }

  /** Stops writing to node `i` and waits until its peers that are up hold everything it wrote. */
  async #quiesceReplicated(i: number): Promise<void> {
    const c = this.#cl
    this.#state[i] = 'quiescing'
    await this.#wl.idle(i)
    const node = c.node(i)
    const deadline = Date.now() + REPLICATE_BEFORE_WIPE_MS
    let behind = 'never checked'
    for (;;) {
      try {
        const own = await node.status()
        const depth = (own as NodeStatus & { ingest?: { depth?: number } }).ingest?.depth ?? 0
        const lagging: string[] = []
        for (const peer of c.nodes) {
          if (peer === node || this.#state[peer.index] !== 'up') continue
          const heads = (await peer.status()).heads
          // Every sled the node ran as: its retired ones may still be on their way too.
          for (const sled of node.sleds) {
            const head = own.heads[sled] ?? -1
            const h = heads[sled] ?? -1
            if (h < head) lagging.push(`${peer.name} holds ${sled.slice(0, 12)} up to ${h} of ${head}`)
          }
        }
        if (depth === 0 && lagging.length === 0) break
        behind = depth > 0 ? `${depth} events still on the ingest bus` : lagging.join(', ')
      } catch (err) {
        behind = (err as Error).message
      }
      if (Date.now() > deadline) {
        this.#violation(
          `before wiping node ${i}: its entries did not reach every peer ` +
            `within ${REPLICATE_BEFORE_WIPE_MS / 1000} s (${behind})`,
        )
        break
      }
      await sleep(200)
    }
  }

  /**
   * SIGKILLs node `i` and deletes its database, keeping its key; its readers start over.
   * `holding`: it may hold acks=0 entries no peer has, which are then noted as lost with its disk
   * (other wipes first made sure its peers hold everything).
   */
  async #loseDisk(i: number, holding = false): Promise<void> {
    const c = this.#cl
    this.#state[i] = 'down'
    await c.kill(i, 'SIGKILL')
    if (holding) await this.#noteLostWithDisk(i)
    this.#successorDue.set(i, c.node(i).sled)
    await c.wipe(i)
    this.#mirrors[i]?.reset()
    this.#wl.noteDiskLost(i)
  }

  async #healAll(): Promise<void> {
    const c = this.#cl
    for (const key of this.#links.keys()) {
      this.#setLink(key, (l) => {
        l.cut = null
        l.shape = null
      })
    }
    await this.#stopHostile()
    for (const n of c.nodes) {
      if (n.running && n.paused) await c.kill(n.index, 'SIGCONT')
      if (!n.running) {
        this.#state[n.index] = 'restarting'
        await c.revive(n.index)
      }
      this.#state[n.index] = 'up'
    }
  }

  #startHostile(targets: readonly number[]): void {
    const h = this.#hostile
    if (h === null || this.#campaign !== null) return
    const c = this.#cl
    const abort = new AbortController()
    const list = targets.map((i) => {
      const node = c.node(i)
      return {
        name: node.name,
        get url() {
          return node.url
        },
        available: () => this.#state[i] === 'up',
      }
    })
    this.#campaign = { abort, done: h.attack(list, abort.signal) }
  }

  async #stopHostile(): Promise<void> {
    const campaign = this.#campaign
    if (campaign === null) return
    this.#campaign = null
    campaign.abort.abort()
    await campaign.done
  }

  // ---- measuring convergence ----

  /** Heads of the nodes that can answer now (failures skipped). */
  async #reachableHeads(): Promise<Map<number, Readonly<Record<string, number>>>> {
    const c = this.#cl
    const out = new Map<number, Readonly<Record<string, number>>>()
    await Promise.all(
      c.nodes.map(async (n) => {
        if (this.#state[n.index] !== 'up') return
        try {
          out.set(n.index, (await n.status()).heads)
        } catch {
          // went down meanwhile
        }
      }),
    )
    return out
  }

  /**
   * Time until every reachable node holds everything any reachable node held when the heal
   * happened. Under a running workload logs are never equal at one instant, so "converged" means
   * "caught up with the moment of the heal".
   */
  async #probe(): Promise<void> {
    const epoch = this.#faultEpoch
    const t0 = Date.now()
    const target = new Map<string, number>()
    for (const heads of (await this.#reachableHeads()).values()) {
      for (const [sled, h] of Object.entries(heads)) target.set(sled, Math.max(target.get(sled) ?? -1, h))
    }
    for (;;) {
      if (this.#faultEpoch !== epoch || (this.#finishing && !this.#checking)) {
        this.#unfinished++
        return
      }
      if (Date.now() - t0 > PROBE_LIMIT_MS) {
        this.#timedOut++
        this.#say(`a heal did not converge within ${PROBE_LIMIT_MS / 1000} s`)
        return
      }
      const now = await this.#reachableHeads()
      if (
        now.size > 0 &&
        [...now.values()].every((heads) => [...target].every(([sled, h]) => (heads[sled] ?? -1) >= h))
      ) {
        this.#convergence.push(Date.now() - t0)
        return
      }
      await sleep(200)
    }
  }

  // ---- checks while running ----

  async #checkLoop(equivocators: ReadonlySet<string>): Promise<void> {
    const interval = this.#o.checkIntervalMs ?? 3000
    while (this.#checking && !this.#finishing) {
      const until = Date.now() + interval
      while (Date.now() < until && this.#checking && !this.#finishing) await sleep(Math.min(200, until - Date.now()))
      if (!this.#checking || this.#finishing) return
      await this.#checkRound(equivocators)
    }
  }

  /**
   * Reads every reachable node (status and new entries) and checks what must hold at any time:
   * log shape, signatures agreeing across nodes, acknowledged appends kept by the node that
   * acknowledged them (unless it is recovering a lost disk), no reused seq, no honest
   * equivocation, no failed write, and no hostile data in what was read.
   */
  async #checkRound(equivocators: ReadonlySet<string>): Promise<void> {
    const c = this.#cl
    this.#rounds++
    // Before reading: an append acknowledged while logs are read may legitimately be missing.
    const acked = c.acked.slice()
    this.#feedLedger()
    const spec = this.#hostileSpec()
    const reads = await Promise.all(
      c.nodes.map(async (n) => {
        const i = n.index
        if (this.#state[i] !== 'up' && this.#state[i] !== 'quiescing') return null
        try {
          const st = await n.status()
          const get = async (path: string): Promise<unknown> => {
            const res = await fetch(n.url + path, { signal: AbortSignal.timeout(10_000) })
            if (!res.ok) throw new Error(`${n.name}: GET ${path} → ${res.status}`)
            return res.json()
          }
          const { added, problems } = await (this.#mirrors[i] as LogMirror).refresh(st.heads, get, equivocators)
          return { i, st, added, problems }
        } catch {
          this.#readErrors++
          return null
        }
      }),
    )
    // A node that went down or lost its disk during the round is left out: its read is stale.
    const ok = reads.filter(
      (r): r is NonNullable<typeof r> => r !== null && (this.#state[r.i] === 'up' || this.#state[r.i] === 'quiescing'),
    )
    for (const r of ok) for (const p of r.problems) this.#violation(p)
    for (const r of reads) if (r !== null) this.#see(r.added, `a read of node ${r.i}`)
    const logs = ok.map((r) => (this.#mirrors[r.i] as LogMirror).log())
    const statuses = ok.map((r) => ({ ...r.st, node: `node ${r.i}` }))
    const recovering = new Set(ok.filter((r) => r.st.appendsHeld).map((r) => `node ${r.i}`))
    const lostWithDisk = this.#lostWithDisk
    for (const v of checkInvariants({
      logs,
      statuses,
      acked,
      converged: false,
      equivocators,
      recovering,
      lostWithDisk,
    }))
      this.#violation(v)
    if (spec !== null) {
      for (const r of ok)
        for (const v of checkHostileData([{ node: `node ${r.i}`, entries: r.added }], spec).violations)
          this.#violation(v)
    }
  }

  /** Records signatures seen; a second one for a (sled, seq) is a violation at once. */
  #see(
    entries: Iterable<{ readonly sled: string; readonly seq: number; readonly sig: string }>,
    where: string,
    final = false,
  ): void {
    for (const e of entries) {
      const conflict = this.#ledger.see(e.sled, e.seq, e.sig, where)
      if (conflict !== undefined) this.#violation(describeResigned(conflict), final)
    }
  }

  /** Shows the ledger the appends acknowledged since it last looked. */
  #feedLedger(final = false): void {
    const acked = this.#cl.acked
    for (; this.#ledgerFed < acked.length; this.#ledgerFed++) {
      const a = acked[this.#ledgerFed]
      if (a !== undefined) this.#see([a], `the answer to a write on ${a.node ?? '?'}`, final)
    }
  }

  #hostileSpec(): HostileSpec | null {
    const h = this.#hostile
    if (h === null) return null
    return {
      attackerSled: h.keys.main.sled,
      forbiddenSleds: [h.keys.rebind.sled],
      ownType: HOSTILE_TYPES.own,
      typePrefix: 'hostile.',
      marker: FORGED_MARKER,
    }
  }

  // ---- the end ----

  /** Heals everything, waits for convergence, checks every invariant; returns the figures. */
  async #finish(equivocators: ReadonlySet<string>): Promise<HarnessFigures> {
    const c = this.#cl
    this.#finishing = true
    this.#say('final phase: writers stop, everything heals')
    await this.#wl.stopWriters()
    await this.#stopHostile()
    await this.#healAll()
    const healed = Date.now()
    const { logs, statuses, converged } = await this.#converge()
    const finalMs = converged ? Date.now() - healed : null
    this.#say(
      converged
        ? `converged ${finalMs} ms after the final heal`
        : `did NOT converge within ${(this.#o.convergeTimeoutMs ?? 90_000) / 1000} s`,
    )
    if (!converged)
      this.#violation(
        `the cluster did not converge within ${(this.#o.convergeTimeoutMs ?? 90_000) / 1000} s of the final heal`,
        true,
      )

    // Readers: every subscriber and consumer must end up with everything its node holds.
    const heads = statuses.map((s) => s.heads)
    for (const s of this.#wl.subscribers) s.hurry()
    const deadline = Date.now() + READERS_CATCH_UP_MS
    const behind = (): string[] => [
      ...this.#wl.subscribers.filter((s, i) => !s.caughtUp(heads[i] ?? {})).map((s) => s.name),
      ...this.#wl.consumers.filter((k, i) => !k.caughtUp(heads[i] ?? {})).map((k) => k.name),
    ]
    while (behind().length > 0 && Date.now() < deadline) await sleep(200)
    for (const name of behind())
      this.#violation(`${name} did not catch up within ${READERS_CATCH_UP_MS / 1000} s of convergence`, true)
    await Promise.all(
      this.#wl.consumers.map((k, i) =>
        k
          .checkFinalCursor(heads[i] ?? {})
          .catch((err: unknown) => this.#violation(`${k.name}: ${(err as Error).message}`, true)),
      ),
    )
    await this.#wl.stopReaders()

    // The final checks, on every node's whole log.
    const acked = c.acked.slice()
    const lostWithDisk = this.#lostWithDisk
    this.#feedLedger(true)
    for (const log of logs) this.#see(log.entries, `the final read of ${log.node}`, true)
    for (const s of this.#wl.subscribers)
      for (const [sled, sigs] of s.delivered)
        this.#see(
          sigs.map((sig, seq) => ({ sled, seq, sig })),
          s.name,
          true,
        )
    for (const v of checkInvariants({ logs, statuses, acked, converged: true, equivocators, lostWithDisk }))
      this.#violation(v, true)
    // A wiped node whose move to a successor was left to the end (another fault came first).
    for (const [i, old] of this.#successorDue)
      if (this.#o.recoveryMode !== 'resume' && c.node(i).sled === old)
        this.#violation(`node ${i} lost its disk as ${old.slice(0, 12)} but never went on under a successor`, true)
    const spec = this.#hostileSpec()
    const hostile = spec === null ? { violations: [], accepted: 0 } : checkHostileData(logs, spec)
    for (const v of hostile.violations) this.#violation(v, true)
    const accounts: IngestAccount[] = []
    if (this.#ingestRate > 0) {
      for (const n of c.nodes) {
        const log = logs[n.index]
        if (log === undefined) continue
        // Each sled the node ran as has lids of its own (a new key starts them from 0).
        const sent = attributeIngest(this.#wl.ingestSent(n.index), n.sleds, log.entries)
        for (const sled of n.sleds) {
          const { violations, account } = checkIngest({
            node: n.sleds.length === 1 ? n.name : `${n.name} as ${sled.slice(0, 12)}`,
            entries: log.entries.filter((e) => e.sled === sled),
            sent: sent.filter((x) => x.sled === sled),
            exits: n.exits.map((x) => ({ at: x.at, crash: x.signal === 'SIGKILL' })),
          })
          for (const v of violations) this.#violation(v, true)
          accounts.push(account)
        }
      }
    }
    this.#wl.subscribers.forEach((s, i) => {
      for (const v of s.violations) this.#violation(v, true)
      const log = logs[i]
      if (log !== undefined)
        for (const v of checkDelivered(s.name, s.delivered, log, equivocators, lostWithDisk)) this.#violation(v, true)
    })
    for (const k of this.#wl.consumers) for (const v of k.violations) this.#violation(v, true)
    const crashes = c.unexpectedExits()
    for (const e of crashes)
      this.#violation(
        `${e.node} exited unexpectedly (${e.signal ?? `code ${e.code}`}) at ${((e.at - this.#t0) / 1000).toFixed(1)} s`,
        true,
      )
    return this.#figures(logs, statuses, finalMs, accounts, hostile.accepted, crashes.length)
  }

  /**
   * Polls until every node holds the same log (same entries, same signatures) with every
   * acknowledged append, or the timeout passes. Cheap status reads first; whole logs only once
   * the heads agree.
   */
  async #converge(): Promise<{ logs: NodeLog[]; statuses: Array<NodeStatus & { node: string }>; converged: boolean }> {
    const c = this.#cl
    const deadline = Date.now() + (this.#o.convergeTimeoutMs ?? 90_000)
    let logs: NodeLog[] = []
    let statuses: Array<NodeStatus & { node: string }> = []
    for (;;) {
      try {
        statuses = await Promise.all(c.nodes.map(async (n) => ({ ...(await n.status()), node: n.name })))
        const first = JSON.stringify(sortedHeads(statuses[0]?.heads ?? {}))
        const headsAgree = statuses.every(
          (s) =>
            JSON.stringify(sortedHeads(s.heads)) === first && Object.keys(s.missing).length === 0 && !s.appendsHeld,
        )
        if (headsAgree) {
          logs = await Promise.all(c.nodes.map(async (n) => ({ node: n.name, ...(await n.read()) })))
          if (
            checkConverged(logs).length === 0 &&
            checkAcked(logs, c.acked, true, undefined, this.#lostWithDisk).length === 0
          )
            return { logs, statuses, converged: true }
        }
      } catch {
        // a node still restarting: try again
      }
      if (Date.now() > deadline) break
      await sleep(500)
    }
    if (logs.length !== c.size) {
      try {
        logs = await Promise.all(c.nodes.map(async (n) => ({ node: n.name, ...(await n.read()) })))
      } catch (err) {
        this.#violation(`could not read every node's log at the end: ${(err as Error).message}`, true)
      }
    }
    return { logs, statuses, converged: false }
  }

  #figures(
    logs: readonly NodeLog[],
    statuses: ReadonlyArray<NodeStatus & { node: string }>,
    finalMs: number | null,
    accounts: readonly IngestAccount[],
    forgedAccepted = 0,
    crashes = 0,
  ): HarnessFigures {
    const c = this.#cluster
    const acked = c?.acked ?? []
    const subs = this.#workload?.subscribers ?? []
    const cons = this.#workload?.consumers ?? []
    const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((n, x) => n + f(x), 0)
    const rejected: Record<string, number> = {}
    for (const s of statuses)
      for (const [code, n] of Object.entries(s.rejected.byCode)) rejected[code] = (rejected[code] ?? 0) + (n ?? 0)
    const first = logs[0]
    const h = this.#hostile
    return {
      faults: { ...this.#faultCounts },
      writers: this.#workload?.stats ?? emptyWriterStats(),
      ingest: { nodes: accounts },
      subscribers: {
        count: subs.length,
        delivered: sum(subs, (s) => s.stats.delivered),
        lagged: sum(subs, (s) => s.stats.lagged),
        connections: sum(subs, (s) => s.stats.connections),
        redelivered: sum(subs, (s) => s.stats.redelivered),
        holes: sum(subs, (s) => s.stats.holes),
      },
      consumers: {
        count: cons.length,
        delivered: sum(cons, (k) => k.stats.delivered),
        redelivered: sum(cons, (k) => k.stats.redelivered),
        acked: sum(cons, (k) => k.stats.acked),
        connections: sum(cons, (k) => k.stats.connections),
        resets: sum(cons, (k) => k.stats.resets),
      },
      hostile:
        h === null
          ? null
          : {
              ...h.stats,
              ownHeld: first === undefined ? 0 : first.entries.filter((e) => e.sled === h.keys.main.sled).length,
            },
      succession: {
        ...this.#succession,
        successors: c?.nodes.reduce((n, node) => n + node.sleds.length - 1, 0) ?? 0,
        retiredSleds: Object.keys(first?.flags?.retired ?? {}).length,
        retiredEntries: first?.entries.filter((e) => e.retired === true).length ?? 0,
      },
      rejected,
      checks: { rounds: this.#rounds, readErrors: this.#readErrors },
      final: {
        ...logFigures(logs, acked, this.#lostWithDisk),
        // Every signature seen anywhere (answers, reads, streams), not only acknowledged ones.
        resigned: this.#ledger.resignedKeys.size,
        entries: first?.entries.length ?? 0,
        sleds: new Set(first?.entries.map((e) => e.sled) ?? []).size,
        acked: acked.length,
        forgedAccepted,
        crashes,
      },
      convergence: {
        heals: this.#convergence.length,
        p50Ms: percentile(this.#convergence, 50),
        p99Ms: percentile(this.#convergence, 99),
        maxMs: percentile(this.#convergence, 100),
        unfinished: this.#unfinished,
        timedOut: this.#timedOut,
        finalMs,
      },
    }
  }
}

/**
 * The sled each ingest answer belongs to. The workload records the sled the harness knew the
 * node ran as when the answer came, but a node that moves itself to a successor may answer as
 * the new sled before its stdout line says so: an answer whose event is not in the recorded
 * sled but is (same lid, same event) in a later sled of the node's chain belongs to that one.
 */
function attributeIngest(
  sent: readonly IngestSent[],
  chain: readonly string[],
  entries: readonly LogEntry[],
): Array<IngestSent & { readonly sled: string }> {
  const held = new Map<string, unknown>()
  for (const e of entries)
    if (e.kind === 'event' && typeof e.lid === 'number')
      held.set(`${e.sled}:${e.lid}`, (e.payload as { n?: unknown } | null | undefined)?.n)
  return sent.map((x) => {
    const from = Math.max(0, chain.indexOf(x.sled ?? (chain[0] as string)))
    const sled = chain.slice(from).find((s) => held.get(`${s}:${x.lid}`) === x.n) ?? chain[from] ?? ''
    return { ...x, sled }
  })
}

function sortedHeads(heads: Readonly<Record<string, number>>): Array<[string, number]> {
  return Object.entries(heads).sort((a, b) => (a[0] < b[0] ? -1 : 1))
}
