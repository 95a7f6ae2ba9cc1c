/**
 * A minimal Server-Sent Events client for tests, parsing as EventSource does (event, id, data,
 * comments) and remembering the last event id, so a test can drop the connection mid-stream and
 * resume with `Last-Event-ID` as a browser would.
 */

/** One dispatched event. */
export interface SseEvent {
  readonly event: string
  readonly data: string
  /** The `id:` field of this event, if it had one. */
  readonly id: string | undefined
}

/** An open stream. */
export class SseClient {
  readonly status: number
  readonly headers: Headers
  /** The last event id of the events handed out so far (EventSource's lastEventId). */
  lastEventId = ''
  /** Comment lines received (heartbeats). */
  readonly comments: string[] = []
  /** `retry:` values received. */
  readonly retries: number[] = []
  readonly #abort: AbortController
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | null
  readonly #decoder = new TextDecoder()
  /** Parsed events not yet handed out, each with the last event id in effect at its dispatch. */
  readonly #queue: Array<SseEvent & { readonly lastId: string }> = []
  #parsedLastId = ''
  #buffer = ''
  #fields: { event: string; data: string[]; id: string | undefined } = { event: 'message', data: [], id: undefined }
  #ended = false
  /** The response body when it was not a stream (an error answer). */
  errorBody: unknown = undefined

  private constructor(res: Response, abort: AbortController) {
    this.status = res.status
    this.headers = res.headers
    this.#abort = abort
    this.#reader = res.status === 200 ? (res.body?.getReader() ?? null) : null
  }

  /** Opens a stream; a non-200 answer is returned with `errorBody` set. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController()
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
    const client = new SseClient(res, abort)
    if (res.status !== 200) {
      const text = await res.text()
      client.errorBody = (res.headers.get('content-type') ?? '').startsWith('application/json')
        ? JSON.parse(text)
        : text
      client.#ended = true
    }
    return client
  }

  /** True once the server ended the stream. */
  get ended(): boolean {
    return this.#ended && this.#queue.length === 0
  }

  /** The next event; rejects after `timeoutMs` or when the stream ends first. */
  async next(timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const e = this.#queue.shift()
      if (e !== undefined) {
        this.lastEventId = e.lastId
        return { event: e.event, data: e.data, id: e.id }
      }
      if (this.#ended) throw new Error('stream ended')
      await this.#read(deadline - Date.now())
    }
  }

  /** Events until (and including) the first for which `stop` is true. */
  async until(stop: (e: SseEvent, all: readonly SseEvent[]) => boolean, timeoutMs = 10_000): Promise<SseEvent[]> {
    const deadline = Date.now() + timeoutMs
    const out: SseEvent[] = []
    for (;;) {
      const e = await this.next(Math.max(1, deadline - Date.now()))
      out.push(e)
      if (stop(e, out)) return out
    }
  }

  /** Waits until the server ends the stream (reading and keeping any events). */
  async waitEnd(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.#ended) await this.#read(deadline - Date.now())
  }

  /** Reads until a comment arrives. */
  async nextComment(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    const seen = this.comments.length
    while (this.comments.length === seen) {
      if (this.#ended) throw new Error('stream ended')
      await this.#read(deadline - Date.now())
    }
    return this.comments[seen] as string
  }

  /** Drops the connection (as a client going away does). */
  close(): void {
    this.#ended = true
    this.#abort.abort()
  }

  async #read(ms: number): Promise<void> {
    if (this.#reader === null) {
      this.#ended = true
      return
    }
    if (ms <= 0) throw new Error('timed out waiting for the stream')
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out waiting for the stream')), ms)
    })
    try {
      const r = await Promise.race([this.#reader.read(), timeout])
      if (r.done) {
        this.#ended = true
        return
      }
      this.#feed(this.#decoder.decode(r.value, { stream: true }))
    } catch (err) {
      if (this.#abort.signal.aborted || (err as Error).name === 'TypeError') {
        this.#ended = true
        return
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  #feed(text: string): void {
    // Lines end in LF or CRLF (a lone CR, which SSE also allows, is not handled: the node
    // never sends one). The last piece is an incomplete line, kept for the next chunk.
    const lines = (this.#buffer + text).split('\n')
    this.#buffer = lines.pop() ?? ''
    for (const line of lines) this.#line(line.endsWith('\r') ? line.slice(0, -1) : line)
  }

  #line(line: string): void {
    if (line === '') {
      const f = this.#fields
      if (f.id !== undefined) this.#parsedLastId = f.id
      if (f.data.length > 0)
        this.#queue.push({ event: f.event, data: f.data.join('\n'), id: f.id, lastId: this.#parsedLastId })
      this.#fields = { event: 'message', data: [], id: undefined }
      return
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trimStart())
      return
    }
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.#fields.event = value
    else if (field === 'data') this.#fields.data.push(value)
    else if (field === 'id') this.#fields.id = value
    else if (field === 'retry') this.retries.push(Number(value))
  }
}
