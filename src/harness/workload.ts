/**
 * The load a harness run puts on its cluster, on every node at once:
 *
 * - appends: POST /v1/events batches at a set rate; what a node acknowledges is recorded
 *   (Cluster.acked) and must never be lost;
 * - ingest: POST /v1/ingest batches, some larger than the node's (small) bus, so events are
 *   dropped and gap sentinels written; every answer (lid, queued or dropped) is recorded for
 *   the accounting check;
 * - one slow subscriber per node ({@link SlowSubscriber});
 * - one durable consumer per node ({@link ConsumerClient}).
 *
 * Writers only send to nodes the runner marks writable, so a frozen or dead node gets no new
 * requests (requests in flight when a fault hits fail or wait, as they would for any client).
 */
import { type Cluster, HttpError } from './cluster.js'
import { ConsumerClient } from './consumer.js'
import type { IngestSent } from './invariants.js'
import { intIn, type Random } from './random.js'
import { SlowSubscriber } from './subscriber.js'

/** Type of appended events. */
export const APPEND_TYPE = 'harness.append'
/** Type of ingested events. */
export const INGEST_TYPE = 'harness.ingest'

/** Options of a {@link Workload}. */
export interface WorkloadOptions {
  readonly cluster: Cluster
  /** Appended events per second per node (0: none). */
  readonly rate: number
  /** Ingested events per second per node (0: none). */
  readonly ingestRate: number
  /** Events per ingest request `[min, max]`; above the bus capacity, events are dropped. */
  readonly ingestBatch: readonly [number, number]
  /** A seeded random stream per purpose. */
  readonly random: (name: string) => Random
  /** Whether node `i` may be sent new writes now. */
  readonly writable: (i: number) => boolean
  /** Whether node `i` can answer reads now. */
  readonly readable: (i: number) => boolean
  /** Run a slow subscriber per node. */
  readonly subscribers: boolean
  /** Run a durable consumer per node. */
  readonly consumers: boolean
  /** Sleds allowed to equivocate (the attacker's). */
  readonly equivocators: ReadonlySet<string>
}

/** Counters of the writers. */
export interface WriterStats {
  /** Append requests answered 201 and the events in them. */
  appendBatches: number
  appended: number
  /** Append requests that failed (node down, timeout, refused): not acknowledged. */
  appendFailures: number
  /** Of those, refused because the node was recovering a lost disk (503 RECOVERING). */
  appendsRecovering: number
  /** Ingest requests answered 202. */
  ingestRequests: number
  /** Events published (answered), queued or dropped. */
  ingested: number
  queued: number
  dropped: number
  /** Ingest requests refused while the node was recovering (503 RECOVERING, or APPENDS_HELD just after). */
  ingestHeld: number
  /** Ingest requests whose answer was lost (node went down): their lids are unknown. */
  ingestUnknown: number
}

/** Writer counters before anything ran. */
export function emptyWriterStats(): WriterStats {
  return {
    appendBatches: 0,
    appended: 0,
    appendFailures: 0,
    appendsRecovering: 0,
    ingestRequests: 0,
    ingested: 0,
    queued: 0,
    dropped: 0,
    ingestHeld: 0,
    ingestUnknown: 0,
  }
}

/** The run's load. Lifecycle: `start()` → `stopWriters()` → (catch up) → `stopReaders()`. */
export class Workload {
  readonly stats: WriterStats = emptyWriterStats()
  readonly subscribers: SlowSubscriber[] = []
  readonly consumers: ConsumerClient[] = []
  readonly #o: WorkloadOptions
  readonly #sent: IngestSent[][]
  readonly #inflight: number[]
  readonly #idle = new Map<number, Array<() => void>>()
  #writers: Promise<void>[] = []
  #stopped = false
  /** Wakes writers sleeping between requests when they are stopped. */
  readonly #sleepers = new Set<() => void>()

  constructor(opts: WorkloadOptions) {
    this.#o = opts
    const n = opts.cluster.size
    this.#sent = Array.from({ length: n }, () => [])
    this.#inflight = Array.from({ length: n }, () => 0)
    for (let i = 0; i < n; i++) {
      const node = opts.cluster.node(i)
      if (opts.subscribers) {
        this.subscribers.push(
          new SlowSubscriber({
            name: `subscriber@${node.name}`,
            url: () => node.url,
            available: () => opts.readable(i),
            random: opts.random(`subscriber ${i}`),
            buffer: 16,
            readMs: [200, 1500],
            pauseMs: [1000, 6000],
            equivocators: opts.equivocators,
          }),
        )
      }
      if (opts.consumers) {
        this.consumers.push(
          new ConsumerClient({
            consumer: `harness-${i}`,
            label: `consumer harness-${i}@${node.name}`,
            url: () => node.url,
            available: () => opts.readable(i),
            random: opts.random(`consumer ${i}`),
            buffer: 64,
            ackEveryMs: 300,
            equivocators: opts.equivocators,
          }),
        )
      }
    }
  }

  /** Starts every writer and reader. */
  start(): void {
    const n = this.#o.cluster.size
    for (let i = 0; i < n; i++) {
      if (this.#o.rate > 0) this.#writers.push(this.#appender(i))
      if (this.#o.ingestRate > 0) this.#writers.push(this.#ingester(i))
    }
    for (const s of this.subscribers) s.start()
    for (const c of this.consumers) c.start()
  }

  /** Stops the writers and waits for their requests in flight. */
  async stopWriters(): Promise<void> {
    this.#stopped = true
    for (const wake of this.#sleepers) wake()
    await Promise.all(this.#writers)
  }

  /** Stops the subscribers and consumers. */
  async stopReaders(): Promise<void> {
    await Promise.all([...this.subscribers.map((s) => s.stop()), ...this.consumers.map((c) => c.stop())])
  }

  /** Resolves once no write request to node `i` is in flight. */
  idle(i: number): Promise<void> {
    if ((this.#inflight[i] ?? 0) === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const list = this.#idle.get(i) ?? []
      list.push(resolve)
      this.#idle.set(i, list)
    })
  }

  /** Node `i` lost its disk: its readers start over there (see their `noteDiskLost`). */
  noteDiskLost(i: number): void {
    this.subscribers[i]?.noteDiskLost()
    this.consumers[i]?.noteDiskLost()
  }

  /** The ingest answers node `i` gave. */
  ingestSent(i: number): readonly IngestSent[] {
    return this.#sent[i] ?? []
  }

  /** Sleeps `ms`, or until the writers stop. */
  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#sleepers.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#sleepers.add(done)
    })
  }

  async #tracked<T>(i: number, work: () => Promise<T>): Promise<T> {
    this.#inflight[i] = (this.#inflight[i] ?? 0) + 1
    try {
      return await work()
    } finally {
      this.#inflight[i] = (this.#inflight[i] ?? 1) - 1
      if (this.#inflight[i] === 0) {
        for (const wake of this.#idle.get(i) ?? []) wake()
        this.#idle.delete(i)
      }
    }
  }

  async #appender(i: number): Promise<void> {
    const rand = this.#o.random(`append ${i}`)
    const node = this.#o.cluster.node(i)
    let n = 0
    while (!this.#stopped) {
      const size = intIn(rand, 1, 4)
      // Jittered so the nodes' appends do not march in lockstep.
      await this.#sleep(((size / this.#o.rate) * 1000 * (0.5 + rand())) | 0)
      if (this.#stopped) break
      if (!this.#o.writable(i)) continue
      const events = Array.from({ length: size }, () => ({ type: APPEND_TYPE, payload: { node: i, n: n++ } }))
      await this.#tracked(i, async () => {
        try {
          await node.append(events)
          this.stats.appendBatches++
          this.stats.appended += size
        } catch (err) {
          this.stats.appendFailures++
          if (err instanceof HttpError && err.code === 'RECOVERING') this.stats.appendsRecovering++
        }
      })
    }
  }

  async #ingester(i: number): Promise<void> {
    const rand = this.#o.random(`ingest ${i}`)
    const node = this.#o.cluster.node(i)
    const sent = this.#sent[i] as IngestSent[]
    let n = 0
    while (!this.#stopped) {
      const size = intIn(rand, this.#o.ingestBatch[0], this.#o.ingestBatch[1])
      await this.#sleep(((size / this.#o.ingestRate) * 1000 * (0.5 + rand())) | 0)
      if (this.#stopped) break
      if (!this.#o.writable(i)) continue
      const first = n
      n += size
      const events = Array.from({ length: size }, (_, k) => ({ type: INGEST_TYPE, payload: { node: i, n: first + k } }))
      const at = Date.now()
      await this.#tracked(i, async () => {
        let res: Response
        try {
          res = await fetch(`${node.url}/v1/ingest`, {
            method: 'POST',
            body: JSON.stringify(events),
            headers: { 'content-type': 'application/json' },
            signal: AbortSignal.timeout(10_000),
          })
        } catch {
          this.stats.ingestUnknown++
          return
        }
        const body = (await res.json().catch(() => null)) as {
          results?: Array<{ lid: number | null; queued: boolean }>
        } | null
        if (res.status === 503) {
          this.stats.ingestHeld++
          return
        }
        if (res.status !== 202 || body?.results === undefined) {
          this.stats.ingestUnknown++
          return
        }
        this.stats.ingestRequests++
        body.results.forEach((r, k) => {
          // Refused (the node could not persist lids fast enough): nothing recorded, no lid used.
          if (r.lid === null) {
            this.stats.ingestHeld++
            return
          }
          // The sled it runs as now: a rotation starts a new sled's lids from 0.
          sent.push({ sled: node.sled, lid: r.lid, queued: r.queued, n: first + k, at })
          this.stats.ingested++
          if (r.queued) this.stats.queued++
          else this.stats.dropped++
        })
      })
    }
  }
}
