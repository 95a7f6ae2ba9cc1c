/**
 * A Server-Sent Events response: framing, a comment heartbeat (so proxies and clients can tell
 * an idle stream from a dead one), write coalescing and backpressure.
 */
import type { ServerResponse } from 'node:http'

/** Reconnect delay suggested to EventSource clients, ms. */
const RETRY_MS = 2000

/** One SSE response. Lifecycle: `open()` → `send()`… → `end()` (or the client goes away). */
export class SseWriter {
  readonly #res: ServerResponse
  readonly #heartbeatMs: number
  #heartbeat: NodeJS.Timeout | null = null
  #corked = false
  #closed = false

  constructor(res: ServerResponse, heartbeatMs: number) {
    this.#res = res
    this.#heartbeatMs = heartbeatMs
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
    this.#heartbeat = setInterval(() => this.#write(': heartbeat\n\n'), this.#heartbeatMs)
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

  /** Resolves once buffered data went out, or the client went away. */
  drained(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#uncork()
    if (!this.#res.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        this.#res.off('drain', done)
        this.#res.off('close', done)
        resolve()
      }
      this.#res.on('drain', done)
      this.#res.on('close', done)
    })
  }

  /** Ends the stream. */
  end(): void {
    if (this.#closed) return
    this.#uncork()
    this.#res.end()
    this.#onClose()
  }

  #write(text: string): boolean {
    if (this.#closed) return true
    // Coalesce the events of one tick (a catch-up produces thousands) into one socket write.
    if (!this.#corked) {
      this.#corked = true
      this.#res.cork()
      setImmediate(() => this.#uncork())
    }
    return this.#res.write(text)
  }

  #uncork(): void {
    if (!this.#corked) return
    this.#corked = false
    this.#res.uncork()
  }

  #onClose(): void {
    this.#closed = true
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat)
    this.#heartbeat = null
  }
}
