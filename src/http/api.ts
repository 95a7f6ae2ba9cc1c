/**
 * The HTTP API of a node (docs/API.md): append, query, status, health. Request bodies are
 * size-limited and parsed strictly; every failure is a JSON error with a stable code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { assertEntryBody } from '../core/entry.js'
import { isSledId, type SledId } from '../core/ids.js'
import type { Query } from '../core/query.js'
import { isSledlogError, sledlogError, SledlogError } from '../errors.js'
import type { IngestWriter } from '../ingest/writer.js'
import type { AppendInput, SledLog } from '../log/sled-log.js'
import type { PeerStatus } from '../sync/replicator.js'
import { HTTP_STATUS } from './status-codes.js'

/** What the API serves. */
export interface ApiContext {
  readonly log: SledLog
  /** The ingest writer behind POST /v1/ingest. */
  readonly ingest: IngestWriter
  /** Peer states for /v1/status. */
  readonly peers: () => PeerStatus[]
  /** Largest request body, in bytes. */
  readonly maxBodyBytes: number
}

/** Sends a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Sends an error as `{error: {code, message}}` with the status from {@link HTTP_STATUS}. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (isSledlogError(err)) {
    sendJson(res, HTTP_STATUS[err.code], { error: { code: err.code, message: err.message } })
    return
  }
  sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } })
}

/** Reads a request body up to `max` bytes; rejects with HTTP_PAYLOAD_TOO_LARGE beyond. */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > max) {
      reject(sledlogError('HTTP_PAYLOAD_TOO_LARGE', `body of ${declared} bytes exceeds ${max}`))
      req.resume()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > max) {
        reject(sledlogError('HTTP_PAYLOAD_TOO_LARGE', `body exceeds ${max} bytes`))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw sledlogError('HTTP_BAD_JSON', 'request body is not valid JSON')
  }
}

/** Turns a POST /v1/events body into append inputs: one event, an array, or `{events: [...]}`. */
export function appendInputs(body: unknown): { inputs: AppendInput[]; single: boolean } {
  const list = Array.isArray(body)
    ? body
    : typeof body === 'object' && body !== null && Array.isArray((body as { events?: unknown }).events)
      ? ((body as { events: unknown[] }).events)
      : undefined
  const items = list ?? [body]
  const inputs = items.map((item, i): AppendInput => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw sledlogError('ENTRY_INVALID', `event ${i} must be an object with type and payload`)
    }
    const o = item as Record<string, unknown>
    if (typeof o.type !== 'string') throw sledlogError('ENTRY_INVALID', `event ${i}: type must be a string`)
    if (!('payload' in o)) throw sledlogError('ENTRY_INVALID', `event ${i}: payload is required (use null for none)`)
    if (o.id !== undefined && typeof o.id !== 'string') throw sledlogError('ENTRY_INVALID', `event ${i}: id must be a string`)
    for (const k of Object.keys(o)) {
      if (k !== 'type' && k !== 'payload' && k !== 'id') throw sledlogError('ENTRY_INVALID', `event ${i}: unknown field ${k}`)
    }
    return o.id === undefined ? { type: o.type, payload: o.payload } : { type: o.type, payload: o.payload, id: o.id as string }
  })
  if (inputs.length === 0) throw sledlogError('ENTRY_INVALID', 'no events to append')
  return { inputs, single: list === undefined }
}

function int(v: string | null, name: string): number | undefined {
  if (v === null) return undefined
  if (!/^-?\d+$/.test(v)) throw sledlogError('HTTP_BAD_REQUEST', `${name} must be an integer`)
  return Number(v)
}

/** Parses GET /v1/events query parameters into a {@link Query}. */
export function parseQuery(params: URLSearchParams): Query {
  const sleds = params.getAll('sled')
  for (const s of sleds) if (!isSledId(s)) throw sledlogError('HTTP_BAD_REQUEST', `sled ${JSON.stringify(s)} is not a sled id`)
  const q: { -readonly [K in keyof Query]: Query[K] } = {}
  if (sleds.length === 1) q.sled = sleds[0] as SledId
  else if (sleds.length > 1) q.sled = sleds as SledId[]
  const after = params.get('after')
  if (after !== null) {
    const [sled, seq] = after.split(':')
    if (!isSledId(sled) || seq === undefined || !/^\d+$/.test(seq)) {
      throw sledlogError('HTTP_BAD_REQUEST', 'after must be <sled>:<seq>')
    }
    q.after = { sled, seq: Number(seq) }
  }
  const afterSeq = int(params.get('afterSeq'), 'afterSeq')
  if (afterSeq !== undefined) q.afterSeq = afterSeq
  const since = int(params.get('since'), 'since')
  if (since !== undefined) q.since = since
  const until = int(params.get('until'), 'until')
  if (until !== undefined) q.until = until
  const types = params.getAll('type')
  if (types.length > 0) q.types = types
  const kinds = params.getAll('kind')
  for (const k of kinds) if (k !== 'event' && k !== 'gap') throw sledlogError('HTTP_BAD_REQUEST', 'kind must be event or gap')
  if (kinds.length > 0) q.kinds = kinds as ('event' | 'gap')[]
  const limit = int(params.get('limit'), 'limit')
  if (limit !== undefined) q.limit = limit
  return q
}

/** Handles one API request. */
export async function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://node')
    const route = `${req.method ?? 'GET'} ${url.pathname}`
    switch (route) {
      case 'GET /healthz':
        return sendJson(res, 200, { ok: true, sled: ctx.log.sled })
      case 'GET /v1/status':
        return sendJson(res, 200, {
          ...ctx.log.status(),
          appendsHeld: ctx.log.appendsHeld,
          peers: ctx.peers(),
          ingest: ctx.ingest.stats(),
        })
      case 'GET /v1/events': {
        const result = ctx.log.query(parseQuery(url.searchParams))
        return sendJson(res, 200, { entries: result.entries, next: result.next === null ? null : `${result.next.sled}:${result.next.seq}` })
      }
      case 'POST /v1/events': {
        const { inputs, single } = appendInputs(parseJson(await readBody(req, ctx.maxBodyBytes)))
        const entries = await ctx.log.appendBatch(inputs)
        return sendJson(res, 201, single ? entries[0] : { entries })
      }
      case 'POST /v1/ingest': {
        // Fire-and-forget onto the bounded bus: never waits for the log; drops are recorded as
        // gap sentinels. 202: accepted for ingest, not yet durable.
        const { inputs } = appendInputs(parseJson(await readBody(req, ctx.maxBodyBytes)))
        if (!ctx.ingest.started) throw sledlogError('APPENDS_HELD', 'ingest starts once this node has recovered from its peers')
        // Check every event before publishing any, so a bad one leaves nothing half-published.
        for (const i of inputs) assertEntryBody({ kind: 'event', ...i })
        return sendJson(res, 202, { results: inputs.map((i) => ctx.ingest.bus.publish(i)) })
      }
      default: {
        const known = ['/healthz', '/v1/status', '/v1/events', '/v1/ingest'].includes(url.pathname)
        throw known
          ? sledlogError('HTTP_METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${url.pathname}`)
          : sledlogError('HTTP_NOT_FOUND', `no route ${url.pathname}`)
      }
    }
  } catch (err) {
    if (!(err instanceof SledlogError)) console.error(err)
    sendError(res, err)
  }
}
