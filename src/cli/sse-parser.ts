/**
 * An incremental parser of the Server-Sent Events wire format (the WHATWG "event stream"
 * grammar) for `tail`: bytes arrive in arbitrary chunks, events come out whole.
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field; `message` when absent. */
  readonly event: string
  /** The `data:` lines joined with newlines. */
  readonly data: string
  /** The `id:` field of this event, if it carried one. */
  readonly id?: string
}

/** Default cap on one event (its unfinished line plus its data lines), in UTF-16 code units. */
export const MAX_EVENT_CHARS = 16 * 1024 * 1024

/** Thrown by {@link SseParser.feed} when one event grows past the cap (the server misbehaves). */
export class SseOverflow extends Error {
  constructor(readonly limit: number) {
    super(`a stream event exceeds ${Math.round(limit / (1024 * 1024))} Mi characters`)
    this.name = 'SseOverflow'
  }
}

/**
 * Parses an event stream fed in chunks. A server that never ends a line or an event cannot make
 * it buffer without bound: past `maxEventChars` it throws {@link SseOverflow}.
 */
export class SseParser {
  #buf = ''
  #event = ''
  #data: string[] = []
  #dataChars = 0
  #id: string | undefined
  #retry: number | undefined
  #first = true
  readonly #max: number

  constructor(maxEventChars = MAX_EVENT_CHARS) {
    this.#max = maxEventChars
  }

  /** The last `retry:` the server sent (ms), if any. */
  get retry(): number | undefined {
    return this.#retry
  }

  /** Feeds decoded text; returns the events it completed. */
  feed(text: string): SseEvent[] {
    let chunk = text
    if (this.#first && chunk.length > 0) {
      // The stream may start with a byte order mark, which is not part of the first field name.
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1)
      this.#first = false
    }
    this.#buf += chunk
    const out: SseEvent[] = []
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buf)
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (m === null || (m[0] === '\r' && m.index === this.#buf.length - 1)) break
      const line = this.#buf.slice(0, m.index)
      this.#buf = this.#buf.slice(m.index + m[0].length)
      const ev = this.#line(line)
      if (ev !== undefined) out.push(ev)
    }
    if (this.#buf.length + this.#dataChars > this.#max) throw new SseOverflow(this.#max)
    return out
  }

  #line(line: string): SseEvent | undefined {
    if (line === '') {
      const hadData = this.#data.length > 0
      const ev: SseEvent = {
        event: this.#event === '' ? 'message' : this.#event,
        data: this.#data.join('\n'),
        ...(this.#id === undefined ? {} : { id: this.#id }),
      }
      this.#event = ''
      this.#data = []
      this.#dataChars = 0
      this.#id = undefined
      // Per the spec an event without data is not dispatched.
      return hadData ? ev : undefined
    }
    if (line.startsWith(':')) return undefined // comment (heartbeat)
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.#event = value
        break
      case 'data':
        this.#data.push(value)
        this.#dataChars += value.length + 1
        if (this.#dataChars > this.#max) throw new SseOverflow(this.#max)
        break
      case 'id':
        if (!value.includes('\0')) this.#id = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.#retry = Number(value)
        break
    }
    return undefined
  }
}
