/**
 * `sledlog tail`: follows a running node's log live over GET /v1/stream (Server-Sent Events) and
 * prints each entry as an NDJSON line. When the connection drops it reconnects with backoff and
 * sends the last event id it saw (`Last-Event-ID`), so the node resumes right after the last
 * printed entry: no gap, no duplicate.
 */
import { isSledId } from '../../core/ids.js'
import { intFlag, parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { CLIENT_FLAGS, CLIENT_HELP, connect } from '../client-options.js'
import { type NodeClient, NodeUnreachable, unreachable } from '../http-client.js'
import { write, type CliIo } from '../io.js'
import { SseOverflow, SseParser, type SseEvent } from '../sse-parser.js'
import { jsonLine, visible } from '../visible.js'

const OPTIONS = {
  url: { type: 'string' },
  sled: { type: 'string', multiple: true },
  from: { type: 'string' },
  'last-event-id': { type: 'string' },
  limit: { type: 'string' },
  'until-live': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** First reconnect delay, doubled per failed attempt up to the cap. */
const BACKOFF_MIN_MS = 250
const BACKOFF_MAX_MS = 10_000

/** `sledlog tail`. */
export const tail: Command = {
  name: 'tail',
  help: `Usage: sledlog tail --url URL [--from start|now] [--sled SLED]... [--limit N] [--until-live]

Follows a running node's log over GET /v1/stream and prints every entry as one JSON line on
stdout. Notices go to stderr: "live" once the stored backlog has been sent, "lagged" when this
client fell behind and is being resynced, "hole" when peers hold entries the node still lacks,
"forked" when a sled signed two versions of a seq, "retired" when a sled's key is retired.
On a dropped connection it reconnects (with backoff) and resumes right after the last entry it
printed, using the stream's event id (Last-Event-ID). Stops on SIGINT/SIGTERM.

Options:
  --from start|now       start at the first entry, or with entries appended from now (default)
  --sled SLED            only this sled; repeatable
  --last-event-id ID     resume after this stream position; on exit tail prints the id to
                         resume from on stderr. Overrides --from
  --limit N              exit after printing N entries
  --until-live           exit once the backlog has been printed (when the stream turns live)
  -q, --quiet            no notices on stderr

${CLIENT_HELP}

Exit codes: 0 stopped (signal, --limit, --until-live); 1 the node refused the stream (bad
--last-event-id, unknown route, missing or insufficient API token); 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, tail)
    if (v.url === undefined) throw new UsageError('tail needs --url URL (a running node)')
    const from = v.from
    if (from !== undefined && from !== 'start' && from !== 'now')
      throw new UsageError(`--from must be start or now, not ${JSON.stringify(from)}`)
    for (const s of v.sled ?? [])
      if (!isSledId(s))
        throw new UsageError(`--sled ${JSON.stringify(s)} is not a sled id (64 lowercase hex characters)`)
    const params = new URLSearchParams()
    if (from !== undefined) params.set('from', from)
    for (const s of v.sled ?? []) params.append('sled', s)
    const limit = intFlag(v.limit, 'limit', 1)
    const client = await connect(v.url, v, io, 'tail')
    const controller = new AbortController()
    const stop = (): void => controller.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    try {
      await follow(io, client, params, {
        lastEventId: v['last-event-id'],
        limit,
        untilLive: v['until-live'] === true,
        quiet: v.quiet === true,
        signal: controller.signal,
      })
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      client.close()
    }
    return EXIT.OK
  },
}

/** Options of {@link follow}. */
export interface FollowOptions {
  readonly lastEventId?: string | undefined
  readonly limit?: number | undefined
  readonly untilLive?: boolean
  readonly quiet?: boolean
  readonly signal: AbortSignal
}

/**
 * Follows the stream until aborted or a stop condition: reconnects on any drop, resuming from the
 * last event id. A 4xx answer (other than 408/429) is final: retrying would get the same.
 */
export async function follow(
  io: CliIo,
  client: NodeClient,
  params: URLSearchParams,
  opts: FollowOptions,
): Promise<void> {
  const state = { lastId: opts.lastEventId }
  try {
    await run(io, client, params, opts, state)
  } finally {
    // Only a position this run reached is worth repeating.
    if (state.lastId !== undefined && state.lastId !== opts.lastEventId && opts.quiet !== true) {
      await write(io.stderr, `sledlog tail: stopped; resume with --last-event-id ${state.lastId}\n`)
    }
  }
}

async function run(
  io: CliIo,
  client: NodeClient,
  params: URLSearchParams,
  opts: FollowOptions,
  state: { lastId: string | undefined },
): Promise<void> {
  let lastId = opts.lastEventId
  let printed = 0
  let backoff = BACKOFF_MIN_MS
  const path = `/v1/stream${params.size > 0 ? `?${params.toString()}` : ''}`
  // Notices quote what the node sent (hole ranges, error messages): escaped for the terminal.
  const notice = async (text: string): Promise<void> => {
    if (opts.quiet !== true) await write(io.stderr, `sledlog tail: ${visible(text)}\n`)
  }
  while (!opts.signal.aborted) {
    const parser = new SseParser()
    let done = false
    try {
      const headers = { accept: 'text/event-stream', ...(lastId === undefined ? {} : { 'last-event-id': lastId }) }
      const res = await client.stream(path, headers, opts.signal)
      if (res.status < 200 || res.status >= 300) {
        const err = await res.error()
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw err
        await notice(`${err.message}; retrying`)
      } else {
        backoff = BACKOFF_MIN_MS
        const decoder = new TextDecoder()
        for await (const chunk of res.body) {
          for (const ev of parser.feed(decoder.decode(chunk, { stream: true }))) {
            if (ev.id !== undefined) lastId = state.lastId = ev.id
            const r = await handle(io, ev, notice)
            if (r === 'entry') printed++
            if ((opts.limit !== undefined && printed >= opts.limit) || (r === 'live' && opts.untilLive === true)) {
              done = true
              break
            }
          }
          if (done) break
        }
        if (done) return
        await notice('stream ended; reconnecting')
      }
    } catch (err) {
      if (opts.signal.aborted) return
      if (err instanceof CliError && !(err instanceof NodeUnreachable)) throw err
      const why =
        err instanceof CliError
          ? err.message
          : err instanceof SseOverflow
            ? `the node at ${client.base} sent a malformed stream (${err.message})`
            : unreachable(client.base, err).message
      await notice(`${why}; reconnecting in ${Math.round(backoff / 100) / 10} s`)
    }
    // The server's retry hint is honoured up to the backoff cap: a hostile one cannot park us.
    await sleep(Math.max(backoff, Math.min(parser.retry ?? 0, BACKOFF_MAX_MS)), opts.signal)
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
  }
}

/** Prints or reports one event; returns its kind. */
async function handle(io: CliIo, ev: SseEvent, notice: (t: string) => Promise<void>): Promise<string> {
  switch (ev.event) {
    case 'entry': {
      // Re-serialised so a line is exactly one JSON object whatever the framing was.
      let entry: unknown
      try {
        entry = JSON.parse(ev.data)
      } catch {
        await notice(`skipped an entry event whose data is not JSON`)
        return 'bad'
      }
      await write(io.stdout, `${jsonLine(entry)}\n`)
      return 'entry'
    }
    case 'live':
      await notice('live (backlog sent; waiting for new entries)')
      return 'live'
    case 'lagged':
      await notice(`lagged: fell behind; the node resends these ranges from its store: ${ev.data}`)
      return 'lagged'
    case 'hole':
      await notice(`hole: peers hold entries this node lacks: ${ev.data}`)
      return 'hole'
    case 'hole-filled':
      await notice(`hole filled: ${ev.data}`)
      return 'hole-filled'
    case 'forked':
      await notice(`forked: a sled signed two versions of a seq; its entries stop below it: ${ev.data}`)
      return 'forked'
    case 'retired':
      await notice(`retired: a sled's key is retired; its entries from this seq carry "retired": true: ${ev.data}`)
      return 'retired'
    default:
      return ev.event
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done(): void {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
