/**
 * Request bodies: size-limited reading and strict JSON parsing. A request that fails here has
 * touched nothing, so a refused batch is never half-applied.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sledlogError } from '../errors.js'

/**
 * Bytes past the limit that are still read (and discarded) before answering 413. Answering while
 * the client is still sending makes many clients see a reset instead of the answer; past this,
 * the node answers at once and closes the connection rather than read a flood.
 */
const DRAIN_BYTES = 16 * 1024 * 1024

/**
 * Reads a request body of at most `max` bytes; rejects with HTTP_PAYLOAD_TOO_LARGE beyond. A
 * moderately oversized body is drained first so the client reads a clean 413; a huge one gets
 * the 413 at once with `Connection: close`.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): Error =>
      sledlogError('HTTP_PAYLOAD_TOO_LARGE', `request body exceeds ${max} bytes`, { limit: max })
    const giveUp = (): void => {
      res.setHeader('connection', 'close')
      // Keep discarding until the connection closes, so the socket is not stalled mid-answer.
      req.removeAllListeners('data')
      req.resume()
      reject(tooLarge())
    }
    const declared = Number(req.headers['content-length'] ?? NaN)
    if (declared > max + DRAIN_BYTES) {
      giveUp()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > max + DRAIN_BYTES) giveUp()
      else if (size <= max) chunks.push(c)
    })
    req.on('end', () => (size > max ? reject(tooLarge()) : resolve(Buffer.concat(chunks))))
    req.on('error', reject)
    // A client that hangs up mid-body gets no answer, but the handler must not wait forever.
    req.on('close', () => {
      if (!req.complete)
        reject(sledlogError('HTTP_BAD_REQUEST', 'the client closed the connection before sending the whole body'))
    })
  })
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Parses a body as JSON; an empty body, invalid UTF-8 or invalid JSON is HTTP_BAD_JSON. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw sledlogError('HTTP_BAD_JSON', 'request body is empty; expected JSON')
  let text: string
  try {
    text = utf8.decode(body)
  } catch {
    throw sledlogError('HTTP_BAD_JSON', 'request body is not valid UTF-8')
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw sledlogError('HTTP_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`)
  }
}

/** Reads and parses a JSON body (see {@link readBody}, {@link parseJson}). */
export async function readJson(req: IncomingMessage, res: ServerResponse, max: number): Promise<unknown> {
  return parseJson(await readBody(req, res, max))
}

/**
 * Checks that `value` is a plain JSON object holding only `allowed` keys; throws ENTRY_INVALID
 * naming `where` otherwise. Unknown fields are refused, not ignored: a misspelt field would
 * otherwise silently do nothing.
 */
export function strictObject(value: unknown, where: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw sledlogError('ENTRY_INVALID', `${where} must be a JSON object`)
  }
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k))
      throw sledlogError('ENTRY_INVALID', `${where}: unknown field ${JSON.stringify(k)}`, { field: k })
  }
  return value as Record<string, unknown>
}
