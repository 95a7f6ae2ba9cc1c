/**
 * A durable consumer client: streams one node's log with `?consumer=NAME`, acknowledges what
 * it received every few hundred ms (POST /v1/consumers/NAME/ack), and reconnects when the
 * stream drops, as a real at-least-once consumer would. The harness kills and restarts its node;
 * the client checks that the node's durable cursor never goes back past an acknowledgement the
 * node confirmed, never passes an entry that was not acknowledged, and that every (re)opened
 * stream starts right after the cursor and continues without a gap.
 */
import type { Heads } from '../core/query.js'
import { nap } from './nap.js'
import { intIn, type Random } from './random.js'
import { openSse, StreamRefused, type SseEvent, type SseStream } from './sse-stream.js'

/** Options of a {@link ConsumerClient}. */
export interface ConsumerClientOptions {
  /** The consumer's name on the node. */
  readonly consumer: string
  /** Name in messages, e.g. `consumer harness-1@node 1`. */
  readonly label: string
  readonly url: () => string
  readonly available: () => boolean
  readonly random: Random
  /** The stream's `buffer`. */
  readonly buffer: number
  /** Acknowledge every this many ms. */
  readonly ackEveryMs: number
  /**
   * Sleds that may equivocate (the attacker's): a node reads one only below its fork seq once it
   * learns of the fork, and a consumer may have acknowledged entries past it before then.
   */
  readonly equivocators?: ReadonlySet<string>
}

/** Counters of a consumer client. */
export interface ConsumerStats {
  /** Streams opened. */
  connections: number
  /** Entries received (redeliveries included). */
  delivered: number
  /** Entries received again after a reconnect (received before, not acknowledged yet): at-least-once. */
  redelivered: number
  /** Entries whose acknowledgement the node confirmed. */
  acked: number
  /** Acknowledgement requests that failed (the node went down meanwhile). */
  ackFailures: number
  /** Times the node lost its disk, and the consumer's cursor with it. */
  resets: number
}

const MAX_VIOLATIONS = 20
const ACK_BATCH = 2000

/** A durable consumer that checks its cursor. Lifecycle: `start()` → `drain()` → `stop()`. */
export class ConsumerClient {
  readonly stats: ConsumerStats = { connections: 0, delivered: 0, redelivered: 0, acked: 0, ackFailures: 0, resets: 0 }
  readonly violations: string[] = []
  readonly #o: ConsumerClientOptions
  /** Cursor the node confirmed in its last ack answer, per sled. */
  readonly #confirmed = new Map<string, number>()
  /** Highest seq ever sent in an acknowledgement, per sled (the cursor may not pass it). */
  readonly #ackSent = new Map<string, number>()
  /** Highest seq received, per sled. */
  readonly #highest = new Map<string, number>()
  /** Next seq expected on the current stream, per sled. */
  #expect = new Map<string, number>()
  #pending: Array<{ sled: string; seq: number }> = []
  #acking: Promise<void> | null = null
  #stopped = false
  #stream: SseStream | null = null
  #loop: Promise<void> | null = null
  #ackTimer: NodeJS.Timeout | null = null
  #wake: (() => void) | null = null

  constructor(opts: ConsumerClientOptions) {
    this.#o = opts
  }

  /** The label. */
  get name(): string {
    return this.#o.label
  }

  /** Starts consuming. */
  start(): void {
    this.#loop ??= this.#run()
    this.#ackTimer ??= setInterval(() => void this.#ack(), this.#o.ackEveryMs)
  }

  /** Stops consuming (pending acknowledgements are dropped, as a crashing consumer's would be). */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#ackTimer !== null) clearInterval(this.#ackTimer)
    this.#ackTimer = null
    this.#stream?.close()
    this.#wake?.()
    await this.#loop
    await this.#acking
  }

  /** The node lost its disk: its stored cursor is gone, so this consumer starts over there. */
  noteDiskLost(): void {
    this.#confirmed.clear()
    this.#ackSent.clear()
    this.stats.resets++
  }

  /** True once everything up to `heads` was received and acknowledged, as far as this client knows. */
  caughtUp(heads: Heads): boolean {
    return (
      Object.entries(heads).every(([sled, head]) => (this.#confirmed.get(sled) ?? -1) >= head) &&
      this.#pending.length === 0
    )
  }

  /** Reads the node's stored cursor and checks it equals `heads` (after {@link caughtUp}). */
  async checkFinalCursor(heads: Heads): Promise<void> {
    const cursor = await this.#cursor()
    for (const [sled, head] of Object.entries(heads)) {
      const c = cursor[sled] ?? -1
      // A cursor never moves back: past a fork seq learnt late is where it may stay.
      if (c > head && this.#o.equivocators?.has(sled) === true) continue
      if (c !== head)
        this.#violation(`final cursor of ${sled.slice(0, 12)} is ${c}, every entry up to ${head} was acknowledged`)
    }
  }

  #violation(text: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push(`${this.#o.label}: ${text}`)
    else if (this.violations.length === MAX_VIOLATIONS) this.violations.push(`${this.#o.label}: … (more left out)`)
  }

  #nap(ms: number): Promise<void> {
    return nap(ms, (wake) => {
      this.#wake = wake
    })
  }

  async #cursor(): Promise<Record<string, number>> {
    // PUT creates the consumer on first use (and after a lost disk) and answers its cursor.
    const res = await fetch(`${this.#o.url()}/v1/consumers/${encodeURIComponent(this.#o.consumer)}`, {
      method: 'PUT',
      signal: AbortSignal.timeout(5000),
    })
    if (!res.ok) throw new Error(`PUT consumer → ${res.status}`)
    return ((await res.json()) as { cursor: Record<string, number> }).cursor
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (!this.#o.available()) {
        await this.#nap(200)
        continue
      }
      // No acknowledgement may land between reading the cursor and opening the stream.
      await this.#acking
      let stream: SseStream
      try {
        const cursor = await this.#cursor()
        for (const [sled, confirmed] of this.#confirmed) {
          const c = cursor[sled] ?? -1
          if (c < confirmed)
            this.#violation(`the node's cursor of ${sled.slice(0, 12)} went back from ${confirmed} (confirmed) to ${c}`)
        }
        for (const [sled, c] of Object.entries(cursor)) {
          const sent = this.#ackSent.get(sled) ?? -1
          if (c > sent)
            this.#violation(`the node's cursor of ${sled.slice(0, 12)} is ${c}, past the last acknowledged seq ${sent}`)
        }
        this.#expect = new Map(Object.entries(cursor).map(([s, c]) => [s, c + 1]))
        this.#pending = []
        const q = new URLSearchParams({ consumer: this.#o.consumer, buffer: String(this.#o.buffer) })
        stream = await openSse(`${this.#o.url()}/v1/stream?${q.toString()}`, {}, (ev) => this.#onEvent(ev))
      } catch (err) {
        // 503: the node cannot serve yet (between two keys after a recovery): retried like a network error.
        if (err instanceof StreamRefused && err.status !== 503)
          this.#violation(`the node refused the consumer stream: ${err.message}`)
        await this.#nap(intIn(this.#o.random, 200, 600))
        continue
      }
      this.stats.connections++
      this.#stream = stream
      if (this.#stopped) stream.close()
      await stream.ended
      this.#stream = null
      // Unacknowledged entries of an ended stream come again on the next one. Acknowledging them
      // now could land between reading the cursor and opening the next stream, which then
      // starts past the cursor that was read.
      this.#pending = []
      if (!this.#stopped) await this.#nap(intIn(this.#o.random, 100, 400))
    }
  }

  #onEvent(ev: SseEvent): void {
    if (ev.event !== 'entry') return
    let e: { sled?: unknown; seq?: unknown }
    try {
      e = JSON.parse(ev.data) as typeof e
    } catch {
      this.#violation(`an entry event is not JSON: ${ev.data.slice(0, 80)}`)
      return
    }
    if (typeof e.sled !== 'string' || typeof e.seq !== 'number') return
    const { sled, seq } = e as { sled: string; seq: number }
    const want = this.#expect.get(sled) ?? 0
    if (seq > want) this.#violation(`skipped ${sled.slice(0, 12)}:${want}..${seq - 1} (received ${seq} next)`)
    else if (seq < want)
      this.#violation(
        `received ${sled.slice(0, 12)}:${seq} again on one stream, or before its cursor (expected ${want})`,
      )
    this.#expect.set(sled, seq + 1)
    this.stats.delivered++
    if (seq <= (this.#highest.get(sled) ?? -1)) this.stats.redelivered++
    else this.#highest.set(sled, seq)
    this.#pending.push({ sled, seq })
  }

  /** Sends the pending acknowledgements (one request at a time). */
  #ack(): Promise<void> {
    if (
      this.#acking !== null ||
      this.#pending.length === 0 ||
      this.#stopped ||
      this.#stream === null ||
      !this.#o.available()
    ) {
      return this.#acking ?? Promise.resolve()
    }
    const batch = this.#pending.splice(0, ACK_BATCH)
    const stream = this.#stream
    // A failed request is retried while the same stream runs; after a reconnect the node
    // delivers the entries again and they are acknowledged then.
    const retry = (): void => {
      if (stream !== null && this.#stream === stream) this.#pending.unshift(...batch)
    }
    // Counted as sent before the request: the node may apply it even if the answer is lost.
    for (const a of batch) if (a.seq > (this.#ackSent.get(a.sled) ?? -1)) this.#ackSent.set(a.sled, a.seq)
    this.#acking = (async () => {
      try {
        const res = await fetch(`${this.#o.url()}/v1/consumers/${encodeURIComponent(this.#o.consumer)}/ack`, {
          method: 'POST',
          body: JSON.stringify(batch),
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(10_000),
        })
        if (!res.ok) {
          this.stats.ackFailures++
          await res.text()
          retry()
          return
        }
        const body = (await res.json()) as { cursor: Record<string, number> }
        for (const [sled, c] of Object.entries(body.cursor))
          if (c > (this.#confirmed.get(sled) ?? -1)) this.#confirmed.set(sled, c)
        this.stats.acked += batch.length
      } catch {
        this.stats.ackFailures++
        retry()
      } finally {
        this.#acking = null
      }
    })()
    return this.#acking
  }
}
