/**
 * GET /v1/stream: the log as Server-Sent Events (docs/API.md "Live stream"). Stored entries
 * after the start position, then live ones, with `lagged`, `hole` and `hole-filled` notices, each
 * entry carrying the whole cursor as its event id so a reconnect with `Last-Event-ID` resumes
 * with no gap and no duplicate.
 */
import type { IncomingMessage } from 'node:http'
import type { SledId } from '../core/ids.js'
import { sledlogError } from '../errors.js'
import { Subscription, type SubscriptionMessage } from '../log/subscription.js'
import { principalKey } from './access.js'
import type { ApiContext, Handler } from './context.js'
import { choiceParam, intParam, sledParams, type ParamSpec } from './params.js'
import { SseWriter } from './sse.js'
import { CursorTracker, parseEventId, resolveCursor } from './stream-cursor.js'

/** Query parameters of GET /v1/stream. */
export const STREAM_PARAMS: ParamSpec = { single: ['from', 'consumer', 'buffer'], multi: ['sled'] }

/** Largest per-subscriber buffer a client may ask for. */
const MAX_BUFFER = 10_000

/**
 * Stored entries a stream reads ahead of its client while catching up. Each is a parsed copy
 * held for that stream alone, so this (not `buffer`) bounds a stuck reader's memory: at most
 * 32 × the largest record (64 KiB) = 2 MiB, typically a few tens of KiB. Measured: 30 unread
 * streams from=start over 4000 entries of 2 kB grew RSS by 171 MB with the read-ahead at
 * `buffer` (1000), by 10 MB with 10 entries.
 */
const READ_AHEAD = 32

function lastEventId(req: IncomingMessage): string | undefined {
  const v = req.headers['last-event-id']
  // EventSource sends no header before it has seen an id; an empty one means the same.
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** Validates the request and subscribes at the position it asks for. */
async function subscribe(
  ctx: ApiContext,
  req: IncomingMessage,
  params: URLSearchParams,
): Promise<{ sub: Subscription; sleds: SledId[]; consumer: string | null }> {
  const from = choiceParam(params, 'from', ['start', 'now'] as const)
  const sleds = sledParams(params)
  const bufferSize = intParam(params, 'buffer', 1, MAX_BUFFER) ?? 1000
  const opts = { bufferSize, readAhead: READ_AHEAD, ...(sleds.length > 0 ? { sleds } : {}) }
  const consumerName = params.get('consumer')
  if (consumerName !== null) {
    if (from !== undefined)
      throw sledlogError(
        'HTTP_BAD_REQUEST',
        "a consumer stream starts at the consumer's cursor; from cannot be given",
        { param: 'from' },
      )
    // Consumer streams resume from the acknowledged cursor, not from Last-Event-ID: what was
    // received but not acknowledged is delivered again (at-least-once).
    const consumer = await ctx.consumers.get(consumerName)
    return { sub: consumer.subscribe(opts), sleds, consumer: consumerName }
  }
  const id = lastEventId(req)
  if (id !== undefined) {
    const heads = resolveCursor(parseEventId(id), Object.keys(ctx.log.heads()) as SledId[])
    return { sub: new Subscription(ctx.log, { ...opts, from: heads }).start(), sleds, consumer: null }
  }
  return { sub: new Subscription(ctx.log, { ...opts, from: from ?? 'now' }).start(), sleds, consumer: null }
}

/**
 * Scope of GET /v1/stream: a consumer stream moves a consumer (consume), any other reads (read).
 */
export function streamScope(url: URL): 'read' | 'consume' {
  return url.searchParams.has('consumer') ? 'consume' : 'read'
}

/** GET /v1/stream. */
export const getStream: Handler = async (ctx, { req, res, url, principal }) => {
  // Counted before anything is read or opened: a refused client costs nothing.
  let stop = (): void => undefined
  const unregister = ctx.subscribers.add(() => stop(), principalKey(principal))
  let sub: Subscription | null = null
  let unwatch = (): void => undefined
  let unwatchToken = (): void => undefined
  try {
    const opened = await subscribe(ctx, req, url.searchParams)
    sub = opened.sub
    const s = sub
    if (res.destroyed || res.socket === null || res.socket.destroyed) return // the client left meanwhile
    const filter = opened.sleds.length === 0 ? null : new Set(opened.sleds)
    const cursor = new CursorTracker(s.cursor(), (x) => filter === null || filter.has(x))
    const sse = new SseWriter(res, {
      heartbeatMs: ctx.heartbeatMs,
      maxQueuedBytes: ctx.streams.maxQueuedBytes,
      stallMs: ctx.streams.stallMs,
      onCut: (reason) => {
        s.stop()
        ctx.subscribers.noteCutOff(reason.code)
        ctx.logger.warn?.(
          { reason: reason.code, client: principalKey(principal), consumer: opened.consumer },
          `event stream cut off: ${reason.message}`,
        )
      },
    })
    // The client going away, or the node stopping, ends the subscription; next() then ends the loop.
    stop = () => {
      s.stop()
      sse.end()
    }
    if (opened.consumer !== null) {
      unwatch = ctx.consumers.watch(opened.consumer, () =>
        sse.cut({ code: 'consumer-deleted', message: `consumer ${opened.consumer} was deleted` }),
      )
    }
    res.once('close', () => s.stop())
    sse.open()
    // The token was checked once, at the request; a stream outlives it, so a revoke (or a
    // file that stopped granting it) must end the stream too, not only later requests.
    const tokens = ctx.access.tokens
    if (principal.kind === 'token' && tokens !== null) {
      const scope = streamScope(url)
      const recheck = (): void => {
        if (!tokens.allows(principal.id, scope))
          sse.cut({ code: 'token-revoked', message: `token ${principal.id} was revoked or lost the ${scope} scope` })
      }
      unwatchToken = tokens.onReload(recheck)
      recheck() // a reload while the stream was being opened
    }
    ctx.subscribers.noteOpened()
    for (;;) {
      const r = await s.next()
      if (r.done === true || sse.closed) break
      if (!send(ctx, sse, cursor, r.value)) await sse.drained()
      // Catch-up messages are ready at once: give other requests their turn.
      await ctx.pacer.turn()
    }
    sse.end()
  } finally {
    sub?.stop()
    unwatch()
    unwatchToken()
    unregister()
  }
}

/** Writes one message; false when the client's buffer is full. */
function send(ctx: ApiContext, sse: SseWriter, cursor: CursorTracker, msg: SubscriptionMessage): boolean {
  switch (msg.type) {
    case 'entry':
      cursor.advance(msg.entry.sled, msg.entry.seq)
      return sse.send('entry', JSON.stringify(msg.entry), cursor.id())
    case 'live':
      // With an id too: a client that saw no entry yet must still resume from here, not from
      // wherever its URL says (which for from=now would skip what committed meanwhile).
      return sse.send('live', JSON.stringify({ cursor: cursor.heads() }), cursor.id())
    case 'lagged':
      ctx.subscribers.noteLagged()
      return sse.send('lagged', JSON.stringify({ missed: msg.missed }))
    case 'hole':
      return sse.send('hole', JSON.stringify({ sled: msg.sled, from: msg.from, to: msg.to }))
    case 'hole-filled':
      return sse.send('hole-filled', JSON.stringify({ sled: msg.sled, upTo: msg.upTo }))
    case 'forked':
      return sse.send('forked', JSON.stringify({ sled: msg.sled, seq: msg.seq }))
    case 'retired':
      return sse.send('retired', JSON.stringify({ sled: msg.sled, seq: msg.seq }))
  }
}
