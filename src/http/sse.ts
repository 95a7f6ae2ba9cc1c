/**
 * A Server-Sent Events response: framing, a comment heartbeat (so proxies and clients can tell
 * an idle stream from a dead one), write coalescing, backpressure, and the cut-off of a client
 * that stops reading: no client can make the node hold an unbounded amount of data for it.
 */
import type { ServerResponse } from 'node:http'
import type { StreamCaps } from './subscribers.js'

/** Reconnect delay suggested to EventSource clients, ms. */
const RETRY_MS = 2000

/**
 * Events are joined into one write of about this many bytes (or whatever one tick produced).
 * Small writes held until the next tick would outlive a young-generation GC and be promoted;
 * 50 stuck streams each pushing megabytes into their kernel buffers then left ~300 MB of
 * promoted garbage. One joined string per 16 KiB dies young.
 */
const FLUSH_BYTES = 16 * 1024

/** How long a cut-off stream's final event may take to go out before the socket is destroyed, ms. */
const CUT_GRACE_MS = 5000

/** Limits of event streams (docs/API.md "Limits"). */
export interface StreamLimits extends StreamCaps {
  /**
   * Bytes a stream may have queued (response buffer plus socket buffer) before it is cut off.
   * The writer waits for a drain at 16 KiB, so this is reached only by a burst or a huge entry.
   */
  readonly maxQueuedBytes: number
  /** A stream whose queued bytes have not drained for this long is cut off, ms. */
  readonly stallMs: number
}

/** Default {@link StreamLimits}. */
export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxStreams: 256,
  maxStreamsPerClient: 32,
  maxQueuedBytes: 1024 * 1024,
  stallMs: 30_000,
}

/** Why a stream was cut off: a stable word (metrics label) and a sentence for the client. */
export interface CutReason {
  readonly code: 'stalled' | 'over-budget' | 'consumer-deleted' | 'token-revoked'
  readonly message: string
}

/** Options of one SSE response. */
export interface SseOptions {
  readonly heartbeatMs: number
  readonly maxQueuedBytes: number
  readonly stallMs: number
  /** Told when the writer cuts the stream off. */
  readonly onCut?: (reason: CutReason) => void
}

/** One SSE response. Lifecycle: `open()` → `send()`… → `end()` / `cut()` (or the client goes away). */
export class SseWriter {
  readonly #res: ServerResponse
  readonly #o: SseOptions
  #heartbeat: NodeJS.Timeout | null = null
  #batch: string[] = []
  #batchBytes = 0
  #flushScheduled = false
  #closed = false

  constructor(res: ServerResponse, opts: SseOptions) {
    this.#res = res
    this.#o = opts
    res.once('close', () => this.#onClose())
  }

  /** True once the client went away or the stream was ended. */
  get closed(): boolean {
    return this.#closed
  }

  /** Sends the headers and starts the heartbeat. */
  open(): void {
    this.#res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Reverse proxies (nginx) would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    })
    this.#res.socket?.setNoDelay(true)
    this.#write(`retry: ${RETRY_MS}\n\n`)
    this.#heartbeat = setInterval(() => this.#write(': heartbeat\n\n'), this.#o.heartbeatMs)
    this.#heartbeat.unref()
  }

  /**
   * Sends one event; `data` must not contain line breaks (JSON.stringify output never does).
   * Returns false when the client's buffer is full: call {@link drained} before sending more.
   */
  send(event: string, data: string, id?: string): boolean {
    return this.#write(
      id === undefined ? `event: ${event}\ndata: ${data}\n\n` : `event: ${event}\nid: ${id}\ndata: ${data}\n\n`,
    )
  }

  /**
   * Resolves once buffered data went out, or the client went away, or (the client reads nothing
   * for `stallMs`) once the stream has been cut off.
   */
  drained(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#flush()
    if (!this.#res.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#res.off('drain', done)
        this.#res.off('close', done)
        resolve()
      }
      const timer = setTimeout(() => {
        this.cut({ code: 'stalled', message: `the client read nothing for ${this.#o.stallMs} ms` })
        done()
      }, this.#o.stallMs)
      this.#res.on('drain', done)
      this.#res.on('close', done)
    })
  }

  /** Ends the stream. */
  end(): void {
    if (this.#closed) return
    this.#flush()
    this.#res.end()
    this.#onClose()
  }

  /**
   * Cuts the stream off: a final `closed` event with the reason (best effort: a client that
   * does not read never sees it), then the connection is destroyed. Other streams are untouched.
   */
  cut(reason: CutReason): void {
    if (this.#closed) return
    this.#flush()
    this.#closed = true
    this.#stopHeartbeat()
    const res = this.#res
    res.end(`event: closed\ndata: ${JSON.stringify({ reason: reason.code, message: reason.message })}\n\n`)
    const destroy = setTimeout(() => res.destroy(), CUT_GRACE_MS)
    destroy.unref()
    res.once('close', () => clearTimeout(destroy))
    this.#o.onCut?.(reason)
  }

  #write(text: string): boolean {
    if (this.#closed) return true
    const bytes = Buffer.byteLength(text)
    if (this.#res.writableLength + this.#batchBytes + bytes > this.#o.maxQueuedBytes) {
      this.cut({ code: 'over-budget', message: `more than ${this.#o.maxQueuedBytes} bytes queued for the client` })
      return true
    }
    // Coalesce the events of one tick (a catch-up produces thousands) into few socket writes.
    this.#batch.push(text)
    this.#batchBytes += bytes
    if (this.#batchBytes >= FLUSH_BYTES) return this.#flush()
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => {
        this.#flushScheduled = false
        this.#flush()
      })
    }
    return true
  }

  /** Writes the batched events; false when the response's buffer is full. */
  #flush(): boolean {
    if (this.#batch.length === 0 || this.#closed) return !this.#res.writableNeedDrain
    const text = this.#batch.length === 1 ? (this.#batch[0] as string) : this.#batch.join('')
    this.#batch = []
    this.#batchBytes = 0
    return this.#res.write(text)
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat)
    this.#heartbeat = null
  }

  #onClose(): void {
    this.#closed = true
    this.#stopHeartbeat()
  }
}
