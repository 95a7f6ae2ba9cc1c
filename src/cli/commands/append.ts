/**
 * `sledlog append`: one event from flags, or many from NDJSON on stdin (bulk import), to a
 * running node or a stopped node's data directory.
 */
import { fstatSync } from 'node:fs'
import { assertEntryBody, type JsonValue } from '../../core/entry.js'
import type { StoredEntry } from '../../core/query.js'
import { isSledlogError } from '../../errors.js'
import type { AppendInput, SledLog } from '../../log/sled-log.js'
import { intFlag, parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-options.js'
import { help, type Command } from '../command.js'
import { write, type CliIo } from '../io.js'
import { readLines } from '../lines.js'
import { progressBar } from '../progress.js'
import { targetOf, type Target } from '../target.js'
import { jsonLine } from '../visible.js'
import { MAX_ACK_TIMEOUT_MS } from '../../http/acks.js'

const OPTIONS = {
  url: { type: 'string' },
  data: { type: 'string' },
  type: { type: 'string' },
  payload: { type: 'string' },
  id: { type: 'string' },
  batch: { type: 'string' },
  sync: { type: 'boolean' },
  acks: { type: 'string' },
  'ack-timeout': { type: 'string' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** Largest request body built for a batch; the node's default limit is 1 MiB. */
const MAX_BATCH_BYTES = 512 * 1024

/** `sledlog append`. */
export const append: Command = {
  name: 'append',
  help: `Usage: sledlog append (--url URL | --data DIR) --type TYPE [--payload JSON] [--id ID]
       sledlog append (--url URL | --data DIR) < events.ndjson

With --type, appends one event and prints the stored entry (with its sled, seq and signature)
as one JSON line. Without it, reads NDJSON from stdin, one event per line:
  {"type": "order.created", "payload": {"id": 42}, "id": "order-42"}
("id" is optional; blank lines are skipped) and appends them in batches, each batch atomically,
then prints {"events": N, "sled": ..., "lastSeq": ...}. Events carrying an "id" are idempotent:
re-running an import that stopped half-way appends only what is missing.

--url appends through a running node (each batch is durable when acknowledged). --data appends
to a stopped node's data directory, signed with its key; never do that while the node runs.

--acks N (with --url) waits until N of the node's configured peers prove they durably hold each
batch (the node's --min-acks when not given): the entry is then on N+1 disks. Fewer peers
connected: NOT_ENOUGH_PEERS, nothing appended. Not held in time: ACKS_TIMEOUT, the batch stays
stored on the node; re-running appends events with an "id" only once and waits again.

Options:
  --type TYPE          event type (one event)
  --payload JSON       event payload as JSON text (default null)
  --id ID              idempotency id
  --batch N            events per batch for stdin (default 1000, at most 10000)
  --sync               with --data: fsync each batch
  --acks N             with --url: configured peers that must hold each batch (0 = durable on
                       the node; default the node's --min-acks)
  --ack-timeout MS     with --url: how long the node waits for them (default the node's
                       --ack-timeout); the request waits 10 s longer

${CLIENT_HELP}

Exit codes: 0 ok; 1 the node refused an event or the token, an input line is invalid (nothing
from that line on is appended; stderr names the line), or the node is unreachable; 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, append)
    const target = await targetOf(v, 'append', io)
    const batch = intFlag(v.batch, 'batch', 1, 10_000) ?? 1000
    if (v.sync === true && target.kind !== 'data') throw new UsageError('--sync only applies with --data')
    const acks = ackFlags(v.acks, v['ack-timeout'])
    if (acks.query !== '' && target.kind !== 'url')
      throw new UsageError('--acks and --ack-timeout only apply with --url (a stopped node has no peers to ask)')
    // Flags are checked before the target is touched: a usage error must change nothing.
    const single = v.type === undefined ? undefined : singleEvent(v.type, v.payload, v.id)
    if (single === undefined && (v.payload !== undefined || v.id !== undefined))
      throw new UsageError('--payload and --id need --type')
    if (single === undefined && io.stdin.isTTY === true)
      throw new UsageError('give --type for one event, or pipe NDJSON events into stdin')
    const sink = await openSink(target, v.sync === true, acks)
    try {
      if (single !== undefined) {
        const { entries, acks: held } = await sink.append([single])
        await write(io.stdout, `${jsonLine(held === undefined ? entries[0] : { ...entries[0], acks: held })}\n`)
        return EXIT.OK
      }
      await bulk(io, sink, batch)
      return EXIT.OK
    } finally {
      await sink.close()
    }
  },
}

/** What a sink stored, and how many peers acknowledged it (when the node waited for any). */
interface Stored {
  readonly entries: StoredEntry[]
  readonly acks?: number
}

/** Where events go. */
interface Sink {
  append(inputs: AppendInput[]): Promise<Stored>
  close(): Promise<void>
}

/** The acknowledgement flags as a query string for POST /v1/events, and how long a request may take. */
interface AckFlags {
  readonly query: string
  readonly timeoutMs: number
}

/** How much longer than the node's wait for acknowledgements a request waits for its answer. */
const ACK_ANSWER_SLACK_MS = 10_000

function ackFlags(acks: string | undefined, timeout: string | undefined): AckFlags {
  const params = new URLSearchParams()
  const n = intFlag(acks, 'acks', 0, 10_000)
  if (n !== undefined) params.set('acks', String(n))
  const ms = intFlag(timeout, 'ack-timeout', 1, MAX_ACK_TIMEOUT_MS)
  if (ms !== undefined) params.set('ackTimeoutMs', String(ms))
  const query = params.size === 0 ? '' : `?${params.toString()}`
  // The client's usual 30 s, or the wait asked for and some slack: never cut a wait short.
  return { query, timeoutMs: Math.max(30_000, (ms ?? 0) + ACK_ANSWER_SLACK_MS) }
}

async function openSink(target: Target, sync: boolean, acks: AckFlags): Promise<Sink> {
  if (target.kind === 'url') {
    const client = target.client
    return {
      async append(inputs) {
        const body = (await client.post(`/v1/events${acks.query}`, { events: inputs }, acks.timeoutMs)) as {
          entries?: StoredEntry[]
          acks?: number
        }
        if (!Array.isArray(body.entries)) throw new CliError(`POST ${client.base}/v1/events: unexpected answer`)
        return { entries: body.entries, ...(typeof body.acks === 'number' ? { acks: body.acks } : {}) }
      },
      close: async () => client.close(),
    }
  }
  const log: SledLog = await (await import('../data-dir.js')).openDataDir(target.dir, { create: true, sync })
  return { append: async (inputs) => ({ entries: await log.appendBatch(inputs) }), close: () => log.close() }
}

function singleEvent(type: string, payloadText: string | undefined, id: string | undefined): AppendInput {
  let payload: unknown = null
  if (payloadText !== undefined) {
    try {
      payload = JSON.parse(payloadText)
    } catch {
      throw new UsageError(
        `--payload is not valid JSON: ${payloadText.length > 60 ? `${payloadText.slice(0, 60)}…` : payloadText}`,
      )
    }
  }
  const input = id === undefined ? { type, payload } : { type, payload, id }
  try {
    assertEntryBody({ kind: 'event', ...input })
  } catch (err) {
    if (isSledlogError(err)) throw new UsageError(err.message)
    throw err
  }
  return input
}

/** Checks one NDJSON line as an event; throws a CliError naming the line. */
export function eventOfLine(text: string, n: number): AppendInput {
  const bad = (why: string): never => {
    throw new CliError(`stdin line ${n}: ${why}`)
  }
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    return bad(`not valid JSON (${(err as Error).message})`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return bad('must be a JSON object {"type", "payload", "id"?}')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o))
    if (k !== 'type' && k !== 'payload' && k !== 'id')
      bad(`unknown field ${JSON.stringify(k)} (an event has type, payload and id)`)
  if (typeof o.type !== 'string') bad('"type" must be a string')
  if (o.id !== undefined && typeof o.id !== 'string') bad('"id" must be a string')
  const input: AppendInput = {
    type: o.type as string,
    payload: (o.payload ?? null) as JsonValue,
    ...(o.id === undefined ? {} : { id: o.id as string }),
  }
  try {
    assertEntryBody({ kind: 'event', ...input })
  } catch (err) {
    if (isSledlogError(err)) bad(err.message)
    throw err
  }
  return input
}

/** Size of stdin when it is a regular file (`< file`), so the bar can show a percentage. */
function stdinSize(): number | undefined {
  try {
    const st = fstatSync(0)
    return st.isFile() ? st.size : undefined
  } catch {
    return undefined
  }
}

async function bulk(io: CliIo, sink: Sink, batchSize: number): Promise<void> {
  const bar = progressBar(io.stderr, 'append', 'bytes')
  const total = io.stdin === process.stdin ? stdinSize() : undefined
  let pending: AppendInput[] = []
  let pendingBytes = 0
  let events = 0
  let last: StoredEntry | undefined
  let firstLine = 1
  /** The fewest peers that acknowledged a batch, when the node waited for any. */
  let acks: number | undefined
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return
    let stored: Stored
    try {
      stored = await sink.append(pending)
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err)
      const code = (err as { code?: unknown }).code
      const prefix = typeof code === 'string' && !msg.includes(code) ? `${code}: ` : ''
      // Stored but not acknowledged in time: not a refusal, and a re-run must know it.
      const what = code === 'ACKS_TIMEOUT' ? 'was stored on the node but not acknowledged' : 'was refused'
      throw new CliError(
        `the batch of stdin lines ${firstLine}.. ${what} (${prefix}${msg}); ` +
          `${events} events before it were appended`,
        EXIT.FAILURE,
        typeof code === 'string' ? code : undefined,
      )
    }
    const entries = stored.entries
    if (stored.acks !== undefined) acks = Math.min(acks ?? stored.acks, stored.acks)
    events += entries.length
    last = entries.at(-1) ?? last
    pending = []
    pendingBytes = 0
  }
  try {
    for await (const line of readLines(io.stdin)) {
      if (line.text.trim() === '') continue
      let input: AppendInput
      try {
        input = eventOfLine(line.text, line.n)
      } catch (err) {
        // Send what came before the bad line, so "N events appended" is exact.
        await flush()
        throw new CliError(`${(err as Error).message}; ${events} events before it were appended`)
      }
      if (pending.length === 0) firstLine = line.n
      pending.push(input)
      pendingBytes += Buffer.byteLength(line.text)
      if (pending.length >= batchSize || pendingBytes >= MAX_BATCH_BYTES) {
        await flush()
        bar.update(line.bytes, total)
      }
    }
    await flush()
  } finally {
    bar.finish()
  }
  const summary = { events, sled: last?.sled ?? null, lastSeq: last?.seq ?? null }
  await write(io.stdout, `${jsonLine(acks === undefined ? summary : { ...summary, acks })}\n`)
}
