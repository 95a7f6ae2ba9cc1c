/**
 * The recovery gate (docs/ARCHITECTURE.md "Recovery"). A node whose key predates its store (a
 * lost disk, a key restored from backup) may have signed entries it no longer holds; appending
 * would sign those seqs a second time. So it refuses writes until it has proof of its own head:
 * holds receipts (PROTOCOL.md §8.6) from a quorum of its configured peers, and at least as many
 * of its own entries as the longest receipt, or any signed record, says exist. Nothing else ends
 * the wait but an operator's explicit decision, which is recorded. Time never proves anything:
 * the recovery timeout only warns, more and more rarely.
 */
import { redactUrls } from '../config/redact.js'
import type { SledId } from '../core/ids.js'
import { sledlogError, type SledlogError } from '../errors.js'
import type { SledLog } from '../log/sled-log.js'

/** How a recovery ended, or that none was needed; 'stopped': the node stopped while waiting. */
export type RecoveryOutcome = 'proven' | 'accepted' | 'not-needed' | 'stopped'

/** Where a recovery stands. */
export type RecoveryState = 'waiting' | 'proven' | 'accepted' | 'stopped'

/** What a recovery keeps across restarts (the node's marker file): it never forgets a proven need. */
export interface RecoveryResume {
  /** When the recovery began (ms since the epoch). */
  readonly since: number
  /** Own entries known to exist: the longest receipt or signed record seen so far. */
  readonly need: number
}

/** Where recovery decisions are logged (at warn: each is worth an operator's attention). */
export interface RecoveryLogger {
  warn(obj: Readonly<Record<string, unknown>>, msg: string): void
}

/** Options of a {@link RecoveryGate}. */
export interface RecoveryGateOptions {
  readonly log: SledLog
  /** The dialed peer URLs (`--peer`). */
  readonly peers: readonly string[]
  /** The allow-listed sleds (`--allow`); absent: none. */
  readonly allow?: ReadonlySet<SledId>
  /**
   * How many distinct configured peers must answer (`--recovery-quorum`); default: every dialed
   * peer, or every allow-listed one when the node dials none.
   */
  readonly quorum?: number
  /** First warning after this long (`--recovery-timeout`, default 10 s); then ever more rarely. */
  readonly warnAfterMs?: number
  /** State of a recovery an earlier run began (its marker file). */
  readonly resume?: RecoveryResume
  readonly logger?: RecoveryLogger
  /** Called when what must be kept across a restart changes (the node rewrites its marker). */
  readonly persist?: (r: RecoveryResume) => void
  /**
   * What a proof leads to: `succession` (default), the node moves to a successor key and appends
   * stay refused here until it has (the owner does it when `done` resolves 'proven'); `resume`,
   * appends continue under this key at the proven head. Only `succession` never signs a seq twice:
   * an entry no peer held (written with acks=0, or in flight) is lost with the disk, and `resume`
   * signs its seq again. An operator's {@link RecoveryGate.acceptHead} always resumes.
   */
  readonly mode?: RecoveryMode
}

/** What a proven recovery may lead to (see {@link RecoveryGateOptions.mode}). */
export const RECOVERY_MODES = ['succession', 'resume'] as const

/** What a proven recovery leads to (see {@link RecoveryGateOptions.mode}). */
export type RecoveryMode = (typeof RECOVERY_MODES)[number]

/** The successor key an automatic succession moved the node to (in the stored status). */
export interface RecoverySuccessor {
  readonly sled: SledId
  /** The old sled's last seq the succession vouches for: later ones read `retired`. */
  readonly lastSeq: number
}

/** One configured peer and its answer. */
export interface RecoveryPeer {
  /** The dialed URL, or the allow-listed sled id. */
  readonly peer: string
  readonly kind: 'dialed' | 'allow-listed'
  /** The peer's sled, once a link authenticated it (an allow-listed peer: always). */
  readonly sled: SledId | null
  /** Entries of this node's sled it signed that it holds; null: no answer yet. */
  readonly holds: number | null
}

/** The operator's decision to append from the head the node held (see {@link RecoveryGate.acceptHead}). */
export interface RecoveryDecision {
  readonly decision: 'accept-head-risking-fork'
  /** When (ms since the epoch) and by whom (API token id or address). */
  readonly at: number
  readonly by: string
  /** Own entries held when it was made: appends resumed at this seq. */
  readonly head: number
  /** Own entries proven to exist then (more than `head`: those seqs are forked for certain). */
  readonly need: number
  /** Configured peers that had not answered. */
  readonly missing: readonly string[]
}

/** `recovery` in GET /v1/status. */
export interface RecoveryStatus {
  readonly state: RecoveryState
  /** What a proof leads to. */
  readonly mode: RecoveryMode
  /** Once a `succession` recovery moved the node to its successor key (its stored status): which. */
  readonly successor: RecoverySuccessor | null
  /** When the recovery began and ended (ms since the epoch). */
  readonly since: number
  readonly endedAt: number | null
  readonly quorum: {
    /** `every dialed peer`, `every allow-listed peer`, `any N configured peers` or `no configured peer`. */
    readonly rule: string
    /** Answers needed; null when no configured peer can give one. */
    readonly needed: number | null
    readonly answered: number
  }
  readonly peers: readonly RecoveryPeer[]
  /** Configured peers that have not answered. */
  readonly missing: readonly string[]
  /** Receipts of authenticated peers that are not configured: they raise `need`, never the quorum. */
  readonly others: Readonly<Record<string, number>>
  /** Own entries held now, and how many are known to exist (the head it needs is `need - 1`). */
  readonly holding: number
  readonly need: number
  /** What it waits for, in words; null once ended. */
  readonly waitingFor: string | null
  /** What an operator can do. */
  readonly options: readonly string[]
  /** Recovery timeout warnings so far, and the last one's time. */
  readonly warnings: number
  readonly lastWarningAt: number | null
  readonly decision: RecoveryDecision | null
}

/** The warning period doubles up to this. */
const MAX_WARN_EVERY_MS = 10 * 60_000

/** The option that ends a recovery without proof: its name says what it risks. */
export const ACCEPT_HEAD_COMMAND = 'sledlog recover --accept-head-risking-fork --url URL'

/**
 * The gate. Lifecycle: `start()` (holds the log's appends) → `noteSled`/`noteReceipt` from the
 * replicator … → it ends by itself (proof), by {@link acceptHead}, or by `stop()`.
 */
export class RecoveryGate {
  readonly #o: RecoveryGateOptions
  readonly #since: number
  #need: number
  /** The sled each dialed URL proved to be, once a dialed link authenticated. */
  readonly #urlSled = new Map<string, SledId>()
  /** The longest verified receipt of each authenticated peer this run. */
  readonly #receipts = new Map<SledId, number>()
  #state: RecoveryState = 'waiting'
  #endedAt: number | null = null
  #decision: RecoveryDecision | null = null
  #warnings = 0
  #lastWarningAt: number | null = null
  #warnEvery: number
  readonly #mode: RecoveryMode
  #warnTimer: NodeJS.Timeout | null = null
  #unsubscribe: Array<() => void> = []
  #resolveDone: ((o: RecoveryOutcome) => void) | null = null
  #resolveOpen: (() => void) | null = null
  readonly #done: Promise<RecoveryOutcome>
  readonly #open: Promise<void>

  constructor(opts: RecoveryGateOptions) {
    this.#o = opts
    this.#since = opts.resume?.since ?? Date.now()
    this.#need = opts.resume?.need ?? 0
    this.#warnEvery = opts.warnAfterMs ?? 10_000
    this.#mode = opts.mode ?? 'succession'
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve
    })
    // Separate from `done`: a stop must end the wait without opening appends.
    this.#open = new Promise((resolve) => {
      this.#resolveOpen = resolve
    })
  }

  /** Resolves when the recovery ended: 'proven', 'accepted' or 'stopped'. */
  get done(): Promise<RecoveryOutcome> {
    return this.#done
  }

  /** True until the recovery ended. */
  get waiting(): boolean {
    return this.#state === 'waiting'
  }

  /** Holds the log's appends (refused with RECOVERING) and starts watching its own entries. */
  start(): void {
    const log = this.#o.log
    // Once proven or accepted the hold is just ending: appends wait the moment it takes.
    log.holdAppends(this.#open, () =>
      this.#state === 'stopped'
        ? sledlogError('RECOVERING', 'this node stopped while recovering its own head')
        : this.refusal(),
    )
    const own = log.clientId
    this.#unsubscribe.push(
      log.onCommit((e) => {
        if (e.runs.some((r) => r.client === own)) this.#check()
      }),
      log.onRemoteHead((sled, seq) => {
        if (sled !== log.sled) return
        this.#raiseNeed(seq + 1)
        this.#check()
      }),
    )
    this.#armWarning()
    const s = this.status()
    this.#warn(
      { need: s.need, quorum: s.quorum, peers: s.peers.map((p) => p.peer) },
      'recovery: this node has a key but a new store (a lost disk, or a key restored from backup): ' +
        `writes are refused until it has proven its own head; waiting for ${s.waitingFor}`,
    )
    this.#check()
  }

  /** A dialed link to `url` authenticated as `sled`. */
  noteSled(url: string, sled: SledId): void {
    if (this.#urlSled.get(url) === sled) return
    this.#urlSled.set(url, sled)
    this.#check()
  }

  /** `sled` proved, with a verified receipt, that it holds `length` of this node's entries. */
  noteReceipt(sled: SledId, length: number): void {
    if (this.#state !== 'waiting') return
    const before = this.#receipts.get(sled)
    if (before !== undefined && length <= before) return
    this.#receipts.set(sled, length)
    const configured = this.#isConfigured(sled)
    this.#raiseNeed(length)
    this.#warn(
      { peer: sled, holds: length, configured, holding: this.#o.log.held(this.#o.log.sled) },
      `recovery: ${configured ? 'configured' : 'unconfigured'} peer ${sled.slice(0, 12)} signed that ` +
        `it holds ${length} of this node's entries`,
    )
    this.#check()
  }

  /**
   * The operator's decision: append from the `head` own entries held now (it must match, so a
   * decision made on a status that has since changed is refused). Entries at or past it that a
   * peer holds become a fork of this sled. Throws RECOVERY_NOT_ACCEPTED when not waiting.
   */
  acceptHead(head: number, by: string): RecoveryStatus {
    const holding = this.#o.log.held(this.#o.log.sled)
    if (this.#state !== 'waiting')
      throw sledlogError('RECOVERY_NOT_ACCEPTED', `this node is not recovering (recovery ${this.#state})`, {
        state: this.#state,
      })
    if (head !== holding)
      throw sledlogError(
        'RECOVERY_NOT_ACCEPTED',
        `the decision was for head ${head} but this node holds ${holding} of its entries now: ` +
          'check the status and decide again',
        { head, holding },
      )
    const s = this.status()
    this.#decision = {
      decision: 'accept-head-risking-fork',
      at: Date.now(),
      by,
      head,
      need: this.#need,
      missing: s.missing,
    }
    this.#warn(
      { ...this.#decision },
      `recovery: the operator (${by}) accepted head ${head} without proof: appends resume at seq ${head}; ` +
        (this.#need > head
          ? `a peer signed that it holds ${this.#need}: seqs ${head}..${this.#need - 1} will be forked`
          : `any entry at seq ${head} or later that ${s.missing.length > 0 ? s.missing.join(', ') : 'a peer'} ` +
            'holds becomes a fork of this sled'),
    )
    this.#end('accepted')
    return this.status()
  }

  /** Ends the wait without opening appends (the node is stopping; its marker keeps the recovery). */
  stop(): void {
    if (this.#state !== 'waiting') return
    this.#state = 'stopped'
    this.#cleanup()
    this.#resolveDone?.('stopped')
  }

  /** The error writes are refused with while waiting; null once ended. */
  refusal(): SledlogError | null {
    if (this.#state === 'proven' && this.#mode === 'succession')
      return sledlogError(
        'RECOVERING',
        'this node proved its head after a lost store and is moving to a successor key (so that no seq of ' +
          'its old key is ever signed twice): retry in a moment',
        { holding: this.#o.log.held(this.#o.log.sled), successorPending: true },
      )
    if (this.#state !== 'waiting') return null
    const s = this.status()
    // Writers see this, not only readers of the status: no peer URL's credentials.
    return sledlogError(
      'RECOVERING',
      "this node's store is new but its key is not (a lost disk?): writes are refused until it has proven " +
        `its own head, so that it never signs a seq twice. Waiting for ${redactUrls(s.waitingFor ?? '')}. ` +
        'GET /v1/status "recovery" shows the peers and what an operator can do.',
      { holding: s.holding, need: s.need, quorum: s.quorum, missing: s.missing.map(redactUrls) },
    )
  }

  /** Where the recovery stands. */
  status(): RecoveryStatus {
    const log = this.#o.log
    const holding = log.held(log.sled)
    const peers = this.#peers()
    const q = this.#quorum(peers)
    const missing = peers.filter((p) => p.holds === null).map((p) => p.peer)
    const others: Record<string, number> = {}
    for (const [sled, n] of this.#receipts) if (!this.#isConfigured(sled)) others[sled] = n
    const waiting = this.#state === 'waiting'
    return {
      state: this.#state,
      mode: this.#mode,
      successor: null,
      since: this.#since,
      endedAt: this.#endedAt,
      quorum: { rule: q.rule, needed: q.needed, answered: q.answered },
      peers,
      missing,
      others,
      holding,
      need: this.#need,
      waitingFor: waiting ? this.#waitingFor(q, missing, holding) : null,
      options: waiting ? this.#options(missing, holding) : [],
      warnings: this.#warnings,
      lastWarningAt: this.#lastWarningAt,
      decision: this.#decision,
    }
  }

  // ---- internals ----

  #isConfigured(sled: SledId): boolean {
    if (this.#o.allow?.has(sled) === true) return true
    for (const s of this.#urlSled.values()) if (s === sled) return true
    return false
  }

  /** Every configured peer once: dialed URLs, then allow-listed sleds no dialed URL proved to be. */
  #peers(): RecoveryPeer[] {
    const out: RecoveryPeer[] = []
    const dialedSleds = new Set<SledId>()
    for (const url of this.#o.peers) {
      const sled = this.#urlSled.get(url) ?? null
      if (sled !== null) dialedSleds.add(sled)
      out.push({ peer: url, kind: 'dialed', sled, holds: sled === null ? null : (this.#receipts.get(sled) ?? null) })
    }
    for (const sled of this.#o.allow ?? []) {
      if (dialedSleds.has(sled)) continue
      out.push({ peer: sled, kind: 'allow-listed', sled, holds: this.#receipts.get(sled) ?? null })
    }
    return out
  }

  #quorum(peers: readonly RecoveryPeer[]): { rule: string; needed: number | null; answered: number; met: boolean } {
    // Two URLs of one sled are one peer: count sleds, not rows.
    const answeredSleds = new Set(peers.flatMap((p) => (p.holds !== null && p.sled !== null ? [p.sled] : [])))
    const answered = answeredSleds.size
    const q = this.#o.quorum
    if (q !== undefined) {
      return { rule: `any ${q} configured peer${q === 1 ? '' : 's'}`, needed: q, answered, met: answered >= q }
    }
    const dialed = peers.filter((p) => p.kind === 'dialed')
    const group = dialed.length > 0 ? dialed : peers
    if (group.length === 0) return { rule: 'no configured peer', needed: null, answered, met: false }
    const needed = new Set(group.map((p) => p.sled ?? p.peer)).size
    return {
      rule: dialed.length > 0 ? 'every dialed peer' : 'every allow-listed peer',
      needed,
      answered,
      met: group.every((p) => p.holds !== null),
    }
  }

  #waitingFor(q: { needed: number | null; answered: number }, missing: readonly string[], holding: number): string {
    if (q.needed === null)
      return 'an operator: this node has no configured peer (--peer or --allow) to ask for its head'
    const parts: string[] = []
    if (q.answered < q.needed || (this.#o.quorum === undefined && missing.length > 0)) {
      const more = this.#o.quorum === undefined ? missing.length : q.needed - q.answered
      parts.push(`receipts from ${more} more configured peer${more === 1 ? '' : 's'} (missing: ${missing.join(', ')})`)
    }
    if (holding < this.#need)
      parts.push(`its own entries ${holding}..${this.#need - 1} (a peer signed that it holds ${this.#need})`)
    const range = this.#o.log.missingRange(this.#o.log.sled)
    if (range !== null && range[1] >= this.#need)
      parts.push(`its own entries ${range[0]}..${range[1]}, which a signed record proves exist`)
    return parts.length > 0 ? parts.join(', and ') : 'nothing more (ending now)'
  }

  #options(missing: readonly string[], holding: number): string[] {
    const out: string[] = []
    if (missing.length > 0)
      out.push(`bring the missing peers back (${missing.join(', ')}): recovery ends by itself once enough answer`)
    if (holding < this.#need)
      out.push(`keep the peers that hold entries ${holding}..${this.#need - 1} running: they are being fetched`)
    out.push(
      `${ACCEPT_HEAD_COMMAND}: append from seq ${holding} now, without proof; any entry at seq ${holding} ` +
        'or later that another node holds becomes a fork of this sled (readers everywhere stop below it)',
    )
    out.push(
      this.#mode === 'succession'
        ? 'once proven this node moves to a successor key by itself; to move now, without the missing answers: ' +
            'stop it and run sledlog recover --new-key --data DIR [--last-seq N] (later seqs of this sled read retired)'
        : 'move this node to a new key (sledlog recover --new-key, node stopped): no fork, new entries go ' +
            'to a new sled',
    )
    return out
  }

  /** A signed word that `n` own entries exist: kept, and across restarts (the marker). */
  #raiseNeed(n: number): void {
    if (n <= this.#need) return
    this.#need = n
    this.#o.persist?.({ since: this.#since, need: n })
  }

  #check(): void {
    if (this.#state !== 'waiting') return
    const log = this.#o.log
    if (!this.#quorum(this.#peers()).met) return
    if (log.held(log.sled) < this.#need) return
    if (log.missingRange(log.sled) !== null) return
    const s = this.status()
    this.#warn(
      { head: s.holding, quorum: s.quorum, peers: s.peers, mode: this.#mode },
      `recovery: own head proven by ${s.quorum.answered} configured peer(s) (${s.quorum.rule}): ` +
        `this node holds ${s.holding} of its entries; ` +
        (this.#mode === 'succession'
          ? `it moves to a successor key vouching for seqs 0..${s.holding - 1} (an entry past them that no ` +
            'peer held is lost with the disk, never signed again)'
          : `appends resume at seq ${s.holding} (an entry there that no peer held is signed again)`),
    )
    this.#end('proven')
  }

  #end(outcome: 'proven' | 'accepted'): void {
    this.#state = outcome
    this.#endedAt = Date.now()
    this.#cleanup()
    // A proof in succession mode opens nothing under this key: the successor's log appends.
    if (outcome === 'accepted' || this.#mode === 'resume') this.#resolveOpen?.()
    this.#resolveDone?.(outcome)
  }

  #cleanup(): void {
    if (this.#warnTimer !== null) clearTimeout(this.#warnTimer)
    this.#warnTimer = null
    for (const u of this.#unsubscribe) u()
    this.#unsubscribe = []
  }

  /** The recovery timeout: a warning, then again after twice as long, up to every 10 minutes. */
  #armWarning(): void {
    this.#warnTimer = setTimeout(() => {
      this.#warnTimer = null
      if (this.#state !== 'waiting') return
      this.#warnings++
      this.#lastWarningAt = Date.now()
      const s = this.status()
      this.#warn(
        { waitingForMs: Date.now() - this.#since, warnings: this.#warnings, missing: s.missing, need: s.need },
        `recovery: still refusing writes after ${Math.round((Date.now() - this.#since) / 1000)} s; waiting for ` +
          `${s.waitingFor}. Options: ${s.options.join('; ')}`,
      )
      this.#warnEvery = Math.min(this.#warnEvery * 2, MAX_WARN_EVERY_MS)
      this.#armWarning()
    }, this.#warnEvery)
    this.#warnTimer.unref?.()
  }

  /** Logs at warn, with the credentials of peer URLs masked (logs outlive the configuration). */
  #warn(obj: Readonly<Record<string, unknown>>, msg: string): void {
    const logger = this.#o.logger
    if (logger === undefined) return
    logger.warn(JSON.parse(redactUrls(JSON.stringify(obj))) as Record<string, unknown>, redactUrls(msg))
  }
}
