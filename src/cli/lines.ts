/**
 * Splits an input stream into lines with their numbers and the bytes consumed, for bulk import
 * from NDJSON: errors name the line, progress counts bytes.
 */
import type { InStream } from './io.js'

/** One input line. */
export interface InputLine {
  /** 1-based line number. */
  readonly n: number
  readonly text: string
  /** Bytes of input consumed up to and including this line. */
  readonly bytes: number
}

/** A bound on line length: past `maxChars` without a newline, `tooLong(n)` is thrown for line n. */
export interface LineLimit {
  readonly maxChars: number
  tooLong(n: number): Error
}

/**
 * Yields the lines of `input` (without line terminators; a final unterminated line included).
 * With `limit`, a line longer than it fails as soon as it is: input without newlines cannot
 * make the reader buffer it all.
 */
export async function* readLines(input: InStream, limit?: LineLimit): AsyncGenerator<InputLine> {
  const decoder = new TextDecoder('utf-8', { fatal: false })
  // The unfinished line in pieces: joined once when its newline comes, so a long line costs its
  // length, not its length times the chunks it spans.
  let pending: string[] = []
  let pendingChars = 0
  let n = 0
  let bytes = 0
  let consumed = 0
  for await (const chunk of input) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    bytes += b.length
    const text = decoder.decode(b, { stream: true })
    let start = 0
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const piece = text.slice(start, nl)
      const raw = pending.length === 0 ? piece : pending.join('') + piece
      pending = []
      pendingChars = 0
      start = nl + 1
      consumed += Buffer.byteLength(raw) + 1
      yield { n: ++n, text: raw.endsWith('\r') ? raw.slice(0, -1) : raw, bytes: Math.min(consumed, bytes) }
    }
    if (start < text.length) {
      pending.push(text.slice(start))
      pendingChars += text.length - start
    }
    if (limit !== undefined && pendingChars > limit.maxChars) throw limit.tooLong(n + 1)
  }
  const rest = pending.join('') + decoder.decode()
  if (rest !== '') yield { n: ++n, text: rest, bytes }
}
