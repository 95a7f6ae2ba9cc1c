/**
 * The node's append path with replicated acknowledgements (`acks=N`, docs/ARCHITECTURE.md
 * "Durability"): a write may ask to be answered only once N configured peers have proved, with
 * signed holds receipts (PROTOCOL.md §8.6), that they durably hold every entry of it. Modelled on
 * Kafka's `acks=all` with `min.insync.replicas`:
 *
 * - fewer than N configured peers connected when the write arrives: refused before anything is
 *   signed (NOT_ENOUGH_PEERS), so the refusal leaves nothing behind;
 * - N not reached in time: ACKS_TIMEOUT, saying what is known (stored here, with which seqs;
 *   held by whom). The entries stay: a retry with the same idempotency ids signs nothing again
 *   and waits anew.
 *
 * Receipts are a peer's word, attributable to its key; a peer that lies counts as one of N.
 */
import { performance } from 'node:perf_hooks'
import type { StoredEntry } from '../core/query.js'
import { sledlogError } from '../errors.js'
import { MAX_ACK_TIMEOUT_MS, type AckStats } from '../http/acks.js'
import { Histogram, type HistogramSnapshot } from '../http/histogram.js'
import type { AppendInput, SledLog } from '../log/sled-log.js'
import type { AckPeer, PeerHolds } from '../sync/peer-holds.js'

/** How a write is acknowledged. */
export interface AckOptions {
  /**
   * Configured peers that must prove they durably hold the write before it is answered; 0 is a
   * local acknowledgement (durable on this node). Default: the node's `minAcks`.
   */
  readonly acks?: number
  /** How long to wait for them, ms (1 … {@link MAX_ACK_TIMEOUT_MS}). Default: the node's `ackTimeoutMs`. */
  readonly ackTimeoutMs?: number
}

/** An acknowledged write. */
export interface AckedAppend {
  /** The stored entries, in order (an event whose idempotency id was held: its existing entry). */
  readonly entries: StoredEntry[]
  /** Configured peers whose receipts covered every entry when the write was answered (0: local ack). */
  readonly acks: number
}

/** What the append path needs of replication (a {@link Replicator} has it). */
export interface AckReplication {
  readonly holds: PeerHolds
  readonly configuredPeers: number
  ackPeers(): AckPeer[]
}

/** Options of {@link AckedAppends}. */
export interface AckedAppendsOptions {
  readonly log: SledLog
  /** Replication; null: a node without peers (every write is a local ack). */
  readonly replication: AckReplication | null
  /** Default `acks` (0). */
  readonly minAcks?: number
  /** Default wait, ms ({@link DEFAULT_ACK_TIMEOUT_MS}). */
  readonly ackTimeoutMs?: number
}

/** Default wait for acknowledgements, ms. */
export const DEFAULT_ACK_TIMEOUT_MS = 10_000

/** Appends with acknowledgements. Lifecycle: constructed → the replicator's stop ends every wait. */
export class AckedAppends {
  readonly #log: SledLog
  readonly #rep: AckReplication | null
  readonly #minAcks: number
  readonly #timeoutMs: number
  readonly #waits = new Histogram()
  #acked = 0
  #timeouts = 0
  #refused = 0

  /** Throws CONFIG_INVALID when `minAcks` or `ackTimeoutMs` is out of range. */
  constructor(opts: AckedAppendsOptions) {
    this.#log = opts.log
    this.#rep = opts.replication
    this.#minAcks = opts.minAcks ?? 0
    this.#timeoutMs = opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS
    const why = ackSettingsProblem(this.#minAcks, this.#timeoutMs, this.configuredPeers)
    if (why !== undefined) throw sledlogError('CONFIG_INVALID', why)
  }

  /** Configured peers: the most acknowledgements a write may ask for. */
  get configuredPeers(): number {
    return this.#rep?.configuredPeers ?? 0
  }

  /**
   * Appends `inputs` atomically (SledLog.appendBatch) and, with `acks` ≥ 1, resolves once that
   * many configured peers hold every entry. Throws ENTRY_INVALID for `acks` or `ackTimeoutMs`
   * out of range, NOT_ENOUGH_PEERS (nothing appended), ACKS_TIMEOUT or NODE_STOPPING (entries
   * stored, `details` say which and who holds them), or what the log throws.
   */
  async append(inputs: readonly AppendInput[], opts: AckOptions = {}): Promise<AckedAppend> {
    const n = opts.acks ?? this.#minAcks
    const timeoutMs = opts.ackTimeoutMs ?? this.#timeoutMs
    const why = ackProblem(n, this.configuredPeers) ?? timeoutProblem(timeoutMs)
    if (why !== undefined) throw sledlogError('ENTRY_INVALID', why)
    const holds = this.#rep?.holds
    if (n === 0 || holds === undefined) return { entries: await this.#log.appendBatch(inputs), acks: 0 }
    const connected = holds.connected()
    if (connected.length < n) {
      this.#refused++
      throw sledlogError(
        'NOT_ENOUGH_PEERS',
        `acks=${n} needs ${peers(n)} connected; ${connected.length} of ${this.configuredPeers} ` +
          `${connected.length === 1 ? 'is' : 'are'}: nothing was appended`,
        { required: n, connected: connected.length, configured: this.configuredPeers, peers: connected },
      )
    }
    const entries = await this.#log.appendBatch(inputs)
    // Receipts are about this node's sled: an entry an earlier key signed (an idempotency id
    // retried after a move to a successor key) is outside them; it was recovered from a peer.
    const own = entries.filter((e) => e.sled === this.#log.sled)
    if (own.length === 0) return { entries, acks: 0 }
    let last = 0
    let first = Number.POSITIVE_INFINITY
    for (const e of own) {
      last = Math.max(last, e.seq)
      first = Math.min(first, e.seq)
    }
    const t0 = performance.now()
    const out = await holds.wait(last + 1, n, timeoutMs)
    if (out.kind === 'acked') {
      this.#waits.observe((performance.now() - t0) / 1000)
      this.#acked++
      return { entries, acks: out.heldBy.length }
    }
    const idempotent = inputs.every((i) => i.id !== undefined)
    const seqs = first === last ? `seq ${first}` : `seqs ${first}..${last}`
    const count = own.length === 1 ? '1 entry is' : `${own.length} entries are`
    const stored = `${count} stored on this node (${seqs})`
    const retry = idempotent
      ? 'retrying with the same idempotency ids is safe: it appends nothing again and waits anew'
      : 'a retry would append the events without an idempotency id again: give each event an id to retry safely'
    const details = {
      stored: true,
      seqs: own.map((e) => e.seq),
      acks: out.heldBy.length,
      required: n,
      heldBy: out.heldBy,
      idempotent,
    }
    if (out.kind === 'stopped') {
      throw sledlogError(
        'NODE_STOPPING',
        `${stored} and held by ${out.heldBy.length} of the ${peers(n)} asked for when the node began ` +
          `shutting down; ${retry}`,
        details,
      )
    }
    this.#timeouts++
    throw sledlogError(
      'ACKS_TIMEOUT',
      `${stored} but held by ${out.heldBy.length} of the ${peers(n)} asked for after ${timeoutMs} ms; ` + retry,
      { ...details, timeoutMs },
    )
  }

  /** Settings, configured peers and counters (the `acks` section of status). */
  stats(): AckStats {
    const peers = this.#rep?.ackPeers() ?? []
    return {
      minAcks: this.#minAcks,
      ackTimeoutMs: this.#timeoutMs,
      configuredPeers: this.configuredPeers,
      connectedPeers: peers.filter((p) => p.connected).length,
      peers,
      waiting: this.#rep?.holds.waiting ?? 0,
      acked: this.#acked,
      timeouts: this.#timeouts,
      refused: this.#refused,
    }
  }

  /** How long acknowledged writes waited for their peers (after being durable here). */
  waits(): HistogramSnapshot {
    return this.#waits.snapshot()
  }
}

/**
 * Why a node's default acknowledgements (`minAcks` of `configured` peers, waiting `ackTimeoutMs`)
 * cannot work, or undefined: checked at start, since a node asking more of every write than it
 * has peers could never append.
 */
export function ackSettingsProblem(minAcks: number, ackTimeoutMs: number, configured: number): string | undefined {
  const acks = ackProblem(minAcks, configured)
  return acks === undefined ? timeoutProblem(ackTimeoutMs) : `minAcks: ${acks.replace(/^acks /, '')}`
}

/** "1 configured peer", "2 configured peers". */
function peers(n: number): string {
  return `${n} configured peer${n === 1 ? '' : 's'}`
}

/** Why `n` acknowledgements cannot be asked of `configured` peers, or undefined. */
function ackProblem(n: number, configured: number): string | undefined {
  if (Number.isSafeInteger(n) && n >= 0 && n <= configured) return undefined
  return (
    `acks must be an integer in 0..${configured} (the configured peers: allow-listed sleds, or ` +
    `--peer URLs without an allow-list), got ${String(n)}`
  )
}

function timeoutProblem(ms: number): string | undefined {
  if (Number.isSafeInteger(ms) && ms >= 1 && ms <= MAX_ACK_TIMEOUT_MS) return undefined
  return `ackTimeoutMs must be an integer in 1..${MAX_ACK_TIMEOUT_MS}, got ${String(ms)}`
}
