/**
 * Turns a running node's state into log events: peers connecting, disconnecting and finishing
 * their sync, rejected updates, dropped ingest events, and the conditions that stop appends.
 *
 * It samples the node's status on a timer rather than hooking into replication: the node's
 * internals stay free of logging concerns, and a sample per half second is timely enough for
 * operators. Noisy events (rejections, drops) are summed and logged at most once per
 * `noisyEveryMs`, so a hostile peer flooding bad updates cannot flood the log too.
 */
import type { ErrorCode } from '../errors.js'
import type { IngestStats } from '../ingest/writer.js'
import type { LogStatus } from '../log/sled-log.js'
import type { PeerStatus } from '../sync/replicator.js'
import type { Logger } from './logger.js'

/** What the watcher samples. */
export interface WatchedNode {
  peers(): readonly PeerStatus[]
  status(): Pick<LogStatus, 'rejected' | 'ownHeadBehind' | 'writeFailed'>
  ingest(): Pick<IngestStats, 'dropped' | 'error'>
}

/** Options of a {@link NodeWatch}. */
export interface NodeWatchOptions {
  /** Sampling interval. Default 500 ms. */
  readonly intervalMs?: number
  /** Least time between two logs of the same noisy kind. Default 10 s. */
  readonly noisyEveryMs?: number
  readonly now?: () => number
}

interface LinkState {
  readonly peer: string
  readonly direction: 'outbound' | 'inbound'
  readonly sled: string | null
  connected: boolean
  synced: boolean
}

/** Sums counts between logs and says when a summary is due. */
class Summary {
  #pending = new Map<string, number>()
  #last = -Infinity
  constructor(readonly everyMs: number) {}
  add(key: string, n: number): void {
    if (n > 0) this.#pending.set(key, (this.#pending.get(key) ?? 0) + n)
  }
  /** The sums since the last summary, if any and if one is due at `now`. */
  due(now: number): Record<string, number> | undefined {
    if (this.#pending.size === 0 || now - this.#last < this.everyMs) return undefined
    this.#last = now
    const out = Object.fromEntries(this.#pending)
    this.#pending = new Map()
    return out
  }
}

/** Samples a node and logs what changed. Lifecycle: `start()` → `stop()`; `sample()` for tests. */
export class NodeWatch {
  readonly #node: WatchedNode
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #now: () => number
  readonly #links = new Map<string, LinkState>()
  /** Per configured peer, the failure last logged (null once it linked again). */
  readonly #dialFailures = new Map<string, string | null>()
  readonly #rejections: Summary
  readonly #drops: Summary
  #rejected = new Map<string, number>()
  #peerRejected = new Map<string, number>()
  #dropped = 0
  #behind = false
  #writeFailed = false
  #ingestError = false
  #timer: NodeJS.Timeout | null = null

  constructor(node: WatchedNode, logger: Logger, opts: NodeWatchOptions = {}) {
    this.#node = node
    this.#log = logger
    this.#intervalMs = opts.intervalMs ?? 500
    this.#now = opts.now ?? Date.now
    this.#rejections = new Summary(opts.noisyEveryMs ?? 10_000)
    this.#drops = new Summary(opts.noisyEveryMs ?? 10_000)
  }

  /** Starts sampling. The timer does not keep the process alive. */
  start(): void {
    this.#timer ??= setInterval(() => this.sample(), this.#intervalMs)
    this.#timer.unref()
  }

  /** Stops sampling, taking one last sample so nothing seen before shutdown goes unlogged. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.sample()
    this.#flushNoisy(Infinity)
  }

  /** Takes one sample and logs the changes since the previous one. */
  sample(): void {
    try {
      this.#sampleLinks()
      this.#sampleLog()
      this.#sampleIngest()
      this.#flushNoisy(this.#now())
    } catch (err) {
      // Watching must never take the node down; a node that is stopping may refuse status.
      this.#log.debug({ err }, 'status sample failed')
    }
  }

  #sampleLinks(): void {
    const seen = new Set<string>()
    for (const p of this.#node.peers()) {
      if (p.url !== null) this.#sampleDial(p)
      if (p.connectedAt === undefined) continue // a configured peer with no session yet
      const direction = p.url === null ? 'inbound' : 'outbound'
      const peer = p.url ?? p.label ?? '?'
      // A reconnect is a new session: keyed by its start time, so it logs as a new connection.
      const key = `${direction}:${peer}@${p.connectedAt}`
      seen.add(key)
      let link = this.#links.get(key)
      if (link === undefined) {
        link = { peer, direction, sled: p.sled ?? null, connected: false, synced: false }
        this.#links.set(key, link)
      }
      const fields = { peer, direction, sled: p.sled ?? null }
      if (p.connected && !link.connected) this.#log.info(fields, 'peer connected')
      if (p.synced === true && !link.synced)
        this.#log.info({ ...fields, entriesReceived: p.entriesReceived ?? 0 }, 'peer synced')
      if (!p.connected && link.connected)
        this.#log.info({ ...fields, reason: p.closeReason ?? null }, 'peer disconnected')
      link.connected = p.connected
      link.synced = p.synced === true
      for (const [code, n] of Object.entries(p.rejected ?? {})) {
        const k = `${peer}\0${code}`
        const before = this.#peerRejected.get(k) ?? 0
        if (n > before) this.#rejections.add(`peer\0${peer}`, n - before)
        this.#peerRejected.set(k, n)
      }
    }
    for (const [key, link] of this.#links) {
      if (seen.has(key)) continue
      if (link.connected)
        this.#log.info({ peer: link.peer, direction: link.direction, sled: link.sled }, 'peer disconnected')
      this.#links.delete(key)
    }
  }

  /**
   * Logs a configured peer's failure once per change of state: when it starts failing, and
   * when the cause changes (refused connection, then an HTTP 429, then a TLS error…), not once
   * per retry. Linking again resets it.
   */
  #sampleDial(p: PeerStatus): void {
    const url = p.url as string
    const logged = this.#dialFailures.get(url) ?? null
    if (p.connected) {
      if (logged !== null) this.#dialFailures.set(url, null)
      return
    }
    const err = p.lastError
    if (err === undefined || err.code === logged) return
    this.#dialFailures.set(url, err.code)
    this.#log.warn(
      { peer: url, code: err.code, reason: err.reason, at: new Date(err.at).toISOString() },
      'peer link failing',
    )
  }

  #sampleLog(): void {
    const st = this.#node.status()
    const now = new Map(Object.entries(st.rejected.byCode as Record<ErrorCode, number>))
    for (const [code, n] of now) {
      const before = this.#rejected.get(code) ?? 0
      if (n > before) this.#rejections.add(`code\0${code}`, n - before)
    }
    this.#rejected = now
    if (st.ownHeadBehind !== null && !this.#behind) {
      this.#log.warn(
        st.ownHeadBehind,
        'this node holds fewer of its own entries than it wrote; appends wait until peers return them',
      )
    } else if (st.ownHeadBehind === null && this.#behind) {
      this.#log.info('own entries recovered; appends resume')
    }
    this.#behind = st.ownHeadBehind !== null
    if (st.writeFailed !== null && !this.#writeFailed)
      this.#log.error({ error: st.writeFailed }, 'a write failed; the log refuses writes until the node restarts')
    this.#writeFailed = st.writeFailed !== null
  }

  #sampleIngest(): void {
    const ing = this.#node.ingest()
    if (ing.dropped > this.#dropped) this.#drops.add('dropped', ing.dropped - this.#dropped)
    this.#dropped = ing.dropped
    if (ing.error !== null && !this.#ingestError) this.#log.error({ error: ing.error }, 'ingest writer stopped')
    this.#ingestError = ing.error !== null
  }

  #flushNoisy(now: number): void {
    const rejected = this.#rejections.due(now)
    if (rejected !== undefined) {
      const byCode: Record<string, number> = {}
      const byPeer: Record<string, number> = {}
      for (const [key, n] of Object.entries(rejected)) {
        const [kind, name] = key.split('\0') as [string, string]
        if (kind === 'code') byCode[name] = n
        else byPeer[name] = n
      }
      this.#log.warn({ byCode, byPeer }, 'updates rejected')
    }
    const dropped = this.#drops.due(now)
    if (dropped !== undefined)
      this.#log.warn({ dropped: dropped.dropped ?? 0 }, 'ingest events dropped (bus full); recorded as gap sentinels')
  }
}
