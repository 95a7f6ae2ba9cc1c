/**
 * A slow subscriber: follows one node's GET /v1/stream from the start of the log, reading in
 * short bursts with long pauses so the node's per-client queue overflows and it gets `lagged`
 * notices, and reconnecting with `Last-Event-ID` whenever the stream drops (the node was killed,
 * restarted, or the harness cut it). It checks, as entries arrive, that every sled's entries
 * come exactly once and in seq order with no gap, despite lag and reconnects.
 */
import type { Heads } from '../core/query.js'
import { PREFIX_CHARS, parseEventId } from '../http/stream-cursor.js'
import { nap } from './nap.js'
import { intIn, type Random } from './random.js'
import { openSse, StreamRefused, type SseEvent, type SseStream } from './sse-stream.js'

/** Options of a {@link SlowSubscriber}. */
export interface SlowSubscriberOptions {
  /** Name in messages, e.g. `subscriber@node 1`. */
  readonly name: string
  /** The node's base URL (a function: a node may move to another port when restarted). */
  readonly url: () => string
  /** False while the node cannot answer; the subscriber waits before reconnecting. */
  readonly available: () => boolean
  readonly random: Random
  /** The stream's `buffer` (entries queued for this client before it counts as lagging). */
  readonly buffer: number
  /** How long each reading burst lasts, ms `[min, max]`. */
  readonly readMs: readonly [number, number]
  /** How long each pause lasts, ms `[min, max]`. */
  readonly pauseMs: readonly [number, number]
  /**
   * Sleds that may equivocate: a redelivery of theirs with another signature is tolerated (a node
   * serves a forked sled only below its fork, where no record changes, so it is not expected).
   */
  readonly equivocators?: ReadonlySet<string>
}

/** Counters of a subscriber. */
export interface SubscriberStats {
  /** Streams opened (the first and every reconnect). */
  connections: number
  /** Entries received the first time. */
  delivered: number
  /** `lagged` notices. */
  lagged: number
  /** `hole` and `hole-filled` notices. */
  holes: number
  /** Entries received again after the node lost its disk (allowed: see {@link SlowSubscriber.noteDiskLost}). */
  redelivered: number
}

/** Most violations kept per subscriber (one broken stream would otherwise repeat itself). */
const MAX_VIOLATIONS = 20

/** A slow stream reader that checks what it receives. Lifecycle: `start()` → `stop()`. */
export class SlowSubscriber {
  readonly stats: SubscriberStats = { connections: 0, delivered: 0, lagged: 0, holes: 0, redelivered: 0 }
  /** Problems seen (each a complete sentence naming the subscriber). */
  readonly violations: string[] = []
  readonly #o: SlowSubscriberOptions
  /** Signatures received per sled, by seq. */
  readonly #sigs = new Map<string, string[]>()
  #lastId: string | undefined
  /**
   * After a disk loss: per sled, the next seq a redelivery from the sled's first entry may
   * bring (absent: none started). Null while no disk was lost.
   */
  #replay: Map<string, number> | null = null
  #hurry = false
  #stopped = false
  #stream: SseStream | null = null
  #wake: (() => void) | null = null
  #loop: Promise<void> | null = null

  constructor(opts: SlowSubscriberOptions) {
    this.#o = opts
  }

  /** The subscriber's name. */
  get name(): string {
    return this.#o.name
  }

  /** Signatures received so far, per sled, in seq order. */
  get delivered(): ReadonlyMap<string, readonly string[]> {
    return this.#sigs
  }

  /** Starts following. */
  start(): void {
    this.#loop ??= this.#run()
  }

  /** Stops and closes the stream. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#stream?.close()
    this.#wake?.()
    await this.#loop
  }

  /**
   * The node lost its disk. When the subscriber resumes there, the node may not hold some
   * sleds of its cursor yet, and per the API delivers such sleds from their first entry when
   * they arrive: a sled received again from seq 0, in order and with the same signatures, up to
   * what was already received, is counted, not reported; so is a replay resumed from the cursor
   * of one the disk was lost in the middle of. Any other repeat, a gap or a different signature
   * still is. Each stream checks against the replay state of the disk it was opened on: what a
   * stream to the lost disk still had buffered (a paused reader's socket) belongs to the earlier
   * replay, not to the one the new disk starts.
   */
  noteDiskLost(): void {
    this.#replay = new Map()
  }

  /** Stops pausing: read at full speed (to catch up at the end of a run). */
  hurry(): void {
    this.#hurry = true
    this.#stream?.resume()
    this.#wake?.()
  }

  /** True once every sled in `heads` was received up to its head. */
  caughtUp(heads: Heads): boolean {
    return Object.entries(heads).every(([sled, head]) => (this.#sigs.get(sled)?.length ?? 0) > head)
  }

  #violation(text: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push(`${this.#o.name}: ${text}`)
    else if (this.violations.length === MAX_VIOLATIONS) this.violations.push(`${this.#o.name}: … (more left out)`)
  }

  /** Waits `ms`, or less when woken (stop, hurry, the stream ending). */
  #nap(ms: number, ended?: Promise<string>): Promise<void> {
    return nap(
      ms,
      (wake) => {
        this.#wake = wake
      },
      ended,
    )
  }

  async #run(): Promise<void> {
    let backoff = 200
    while (!this.#stopped) {
      if (!this.#o.available()) {
        await this.#nap(200)
        continue
      }
      let stream: SseStream
      const replay = this.#replay === null ? null : { from: this.#replay, resumed: cursorOf(this.#lastId) }
      try {
        const q = new URLSearchParams({ from: 'start', buffer: String(this.#o.buffer) })
        stream = await openSse(
          `${this.#o.url()}/v1/stream?${q.toString()}`,
          this.#lastId === undefined ? {} : { 'last-event-id': this.#lastId },
          (ev) => this.#onEvent(ev, replay),
        )
      } catch (err) {
        // 503: the node cannot serve yet (between two keys after a recovery): retried like a network error.
        if (err instanceof StreamRefused && err.status !== 503) {
          // A node must resume any id it sent: a refusal is a bug, and retrying would repeat it.
          this.#violation(`the node refused to resume after ${JSON.stringify(this.#lastId)}: ${err.message}`)
          return
        }
        await this.#nap(backoff)
        backoff = Math.min(2000, backoff * 2)
        continue
      }
      backoff = 200
      this.stats.connections++
      this.#stream = stream
      if (this.#stopped) stream.close()
      let done = false
      void stream.ended.then(() => (done = true))
      while (!done && !this.#stopped) {
        stream.resume()
        if (this.#hurry) {
          await this.#nap(3_600_000, stream.ended)
          continue
        }
        await this.#nap(intIn(this.#o.random, this.#o.readMs[0], this.#o.readMs[1]), stream.ended)
        if (done || this.#stopped || this.#hurry) continue
        stream.pause()
        await this.#nap(intIn(this.#o.random, this.#o.pauseMs[0], this.#o.pauseMs[1]), stream.ended)
      }
      stream.close()
      this.#stream = null
      if (!this.#stopped) await this.#nap(intIn(this.#o.random, 100, 500))
    }
  }

  #onEvent(ev: SseEvent, replay: Replay | null): void {
    switch (ev.event) {
      case 'entry': {
        let e: { sled?: unknown; seq?: unknown; sig?: unknown }
        try {
          e = JSON.parse(ev.data) as typeof e
        } catch {
          this.#violation(`an entry event is not JSON: ${ev.data.slice(0, 80)}`)
          return
        }
        if (typeof e.sled !== 'string' || typeof e.seq !== 'number' || typeof e.sig !== 'string') {
          this.#violation(`an entry event lacks sled/seq/sig: ${ev.data.slice(0, 80)}`)
          return
        }
        this.#entry(e.sled, e.seq, e.sig, replay)
        if (ev.id !== undefined) this.#lastId = ev.id
        else this.#violation(`entry ${e.sled.slice(0, 12)}:${e.seq} came without an event id`)
        return
      }
      case 'live':
        if (ev.id !== undefined) this.#lastId = ev.id
        return
      case 'lagged':
        this.stats.lagged++
        return
      case 'hole':
      case 'hole-filled':
        this.stats.holes++
        return
    }
  }

  #entry(sled: string, seq: number, sig: string, replay: Replay | null): void {
    let list = this.#sigs.get(sled)
    if (list === undefined) this.#sigs.set(sled, (list = []))
    const short = sled.slice(0, 12)
    if (seq === list.length) {
      list.push(sig)
      this.stats.delivered++
    } else if (seq < list.length) {
      const same = list[seq] === sig || this.#o.equivocators?.has(sled) === true
      // A replay goes on where it was, or starts from the sled's first entry or (a disk lost
      // again mid-replay, the new one holding more) after the cursor the stream resumed from.
      const resumed = replay?.resumed.get(sled.slice(0, PREFIX_CHARS))
      const replaying =
        replay !== null &&
        (seq === 0 || seq === (replay.from.get(sled) ?? 0) || (resumed !== undefined && seq === resumed + 1))
      if (same && replaying) {
        this.stats.redelivered++
        replay?.from.set(sled, seq + 1)
      } else if (same) this.#violation(`received ${short}:${seq} twice (exactly once expected)`)
      else this.#violation(`received ${short}:${seq} again with a different signature`)
    } else {
      this.#violation(
        `received ${short}:${seq} after ${short}:${list.length - 1}: seqs ${list.length}..${seq - 1} were skipped`,
      )
      // Keep counting from here, so one gap is reported once.
      while (list.length < seq) list.push('')
      list.push(sig)
      this.stats.delivered++
    }
  }
}

/** A stream's view of a replay after a disk loss: where each sled's replay is, and its resume cursor. */
interface Replay {
  readonly from: Map<string, number>
  /** The stream's `Last-Event-ID` cursor, by sled prefix. */
  readonly resumed: ReadonlyMap<string, number>
}

/** The (prefix → seq) pairs of an event id; empty when there is none or it cannot be read. */
function cursorOf(id: string | undefined): ReadonlyMap<string, number> {
  if (id === undefined) return new Map()
  try {
    return new Map(parseEventId(id))
  } catch {
    return new Map()
  }
}
