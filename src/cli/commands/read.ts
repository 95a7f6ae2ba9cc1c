/**
 * `sledlog read`: entries in (sled, seq) order as NDJSON or a table, from a running node or a
 * stopped node's data directory, with the query filters of GET /v1/events and paging.
 */
import { ENTRY_KINDS, type EntryKind } from '../../core/entry.js'
import { resolveAdminKeys } from '../../config/resolve.js'
import { isSledId, type SledId } from '../../core/ids.js'
import { MAX_LIMIT, type Position, type Query, type QueryResult, type StoredEntry } from '../../core/query.js'
import type { SledLog } from '../../log/sled-log.js'
import { intFlag, parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-options.js'
import { help, type Command } from '../command.js'
import type { NodeClient } from '../http-client.js'
import { notice, write } from '../io.js'
import { tableHeader, tableRow } from '../table.js'
import { targetOf } from '../target.js'
import { jsonLine } from '../visible.js'

const OPTIONS = {
  url: { type: 'string' },
  data: { type: 'string' },
  sled: { type: 'string', multiple: true },
  after: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  type: { type: 'string', multiple: true },
  kind: { type: 'string', multiple: true },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  'page-size': { type: 'string' },
  format: { type: 'string' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** Entries read when neither --limit nor --all is given (the API's default page). */
const DEFAULT_LIMIT = 1000

/** `sledlog read`. */
export const read: Command = {
  name: 'read',
  help: `Usage: sledlog read (--url URL | --data DIR) [filters] [--limit N | --all] [--format ndjson|table]

Prints entries in (sled, seq) order, one JSON object per line (NDJSON), or as a table.
--url reads from a running node; --data from a stopped node's data directory, never modified
(one that cannot be opened in place, e.g. on a read-only disk, is read from a temporary copy;
the admin keys of its node, which decide its "retired" flags, come from SLEDLOG_ADMIN_KEYS).
Control characters in entries are escaped on output: never sent raw to the terminal.

Filters:
  --sled SLED          only this sled; repeatable
  --after SLED:SEQ     only entries after this position (continue a previous read)
  --since TIME         only entries with ts >= TIME (ms since the epoch, or an ISO date)
  --until TIME         only entries with ts < TIME
  --type TYPE          only events of this type; repeatable (leaves gap sentinels out)
  --kind KIND          event, gap, succession or revocation; repeatable

Output:
  --limit N            at most N entries (default ${DEFAULT_LIMIT}; at most ${MAX_LIMIT} without --all)
  --all                every matching entry, fetched page by page (--limit then caps the total)
  --page-size N        entries per request with --all (default 1000, at most ${MAX_LIMIT})
  --format FORMAT      ndjson (default) or table

${CLIENT_HELP}

When the output stops at the limit, stderr says how to continue (--after).

Exit codes: 0 ok; 1 the node or directory could not be read; 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, read)
    const target = await targetOf(v, 'read', io)
    const format = v.format ?? 'ndjson'
    if (format !== 'ndjson' && format !== 'table')
      throw new UsageError(`--format must be ndjson or table, not ${JSON.stringify(format)}`)
    const all = v.all === true
    const limit =
      intFlag(v.limit, 'limit', 1, all ? Number.MAX_SAFE_INTEGER : MAX_LIMIT) ?? (all ? Infinity : DEFAULT_LIMIT)
    const pageSize = intFlag(v['page-size'], 'page-size', 1, MAX_LIMIT) ?? 1000
    if (v['page-size'] !== undefined && !all) throw new UsageError('--page-size only applies with --all')
    const filters = parseFilters(v)

    let log: SledLog | undefined
    const page =
      target.kind === 'url'
        ? (after: Position | undefined, n: number) => fetchPage(target.client, filters, after, n)
        : async (after: Position | undefined, n: number) => {
            log ??= await (await import('../data-dir.js')).openDataDir(target.dir, {
              onNotice: notice(io, 'read'),
              adminKeys: resolveAdminKeys(io.env),
            })
            return log.query({ ...filters, ...(after === undefined ? {} : { after }), limit: n })
          }
    try {
      if (format === 'table') await write(io.stdout, `${tableHeader()}\n`)
      let after = filters.after
      let left = limit
      for (;;) {
        const n = Math.min(left, all ? pageSize : MAX_LIMIT)
        const result = await page(after, n)
        if (result.entries.length > 0) {
          const text = result.entries.map((e) => (format === 'table' ? tableRow(e) : jsonLine(e))).join('\n')
          await write(io.stdout, `${text}\n`)
        }
        left -= result.entries.length
        if (result.next === null) break
        after = result.next
        if (left <= 0) {
          // The page ended at the limit, so there may be more; say how to get them.
          await write(
            io.stderr,
            `sledlog read: stopped at the limit; more entries may follow: --after ${after.sled}:${after.seq}\n`,
          )
          break
        }
      }
    } finally {
      await log?.close()
      if (target.kind === 'url') target.client.close()
    }
    return EXIT.OK
  },
}

type Filters = Omit<Query, 'limit' | 'afterSeq' | 'afterHeads'>

function parseFilters(v: {
  sled?: string[] | undefined
  after?: string | undefined
  since?: string | undefined
  until?: string | undefined
  type?: string[] | undefined
  kind?: string[] | undefined
}): Filters {
  const q: { -readonly [K in keyof Filters]: Filters[K] } = {}
  if (v.sled !== undefined) {
    for (const s of v.sled)
      if (!isSledId(s))
        throw new UsageError(`--sled ${JSON.stringify(s)} is not a sled id (64 lowercase hex characters)`)
    q.sled = v.sled as SledId[]
  }
  if (v.after !== undefined) q.after = parsePosition(v.after, 'after')
  if (v.since !== undefined) q.since = parseTime(v.since, 'since')
  if (v.until !== undefined) q.until = parseTime(v.until, 'until')
  if (v.type !== undefined) q.types = v.type
  if (v.kind !== undefined) {
    for (const k of v.kind)
      if (!(ENTRY_KINDS as readonly string[]).includes(k))
        throw new UsageError(`--kind must be one of ${ENTRY_KINDS.join(', ')}, not ${JSON.stringify(k)}`)
    q.kinds = v.kind as EntryKind[]
  }
  return q
}

/** Parses `SLED:SEQ`. */
export function parsePosition(text: string, flag: string): Position {
  const [sled, seq, ...extra] = text.split(':')
  if (!isSledId(sled) || seq === undefined || !/^\d+$/.test(seq) || extra.length > 0) {
    throw new UsageError(`--${flag} must be SLED:SEQ (a sled id, a colon, a seq), not ${JSON.stringify(text)}`)
  }
  return { sled, seq: Number(seq) }
}

/** Parses a time: integer ms since the epoch, or a date Date.parse understands (ISO 8601). */
export function parseTime(text: string, flag: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text)
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a time (ms since the epoch or an ISO date)`)
  return ms
}

async function fetchPage(
  client: NodeClient,
  f: Filters,
  after: Position | undefined,
  limit: number,
): Promise<QueryResult> {
  const p = new URLSearchParams()
  const sleds = f.sled === undefined ? [] : typeof f.sled === 'string' ? [f.sled] : f.sled
  for (const s of sleds) p.append('sled', s)
  if (after !== undefined) p.set('after', `${after.sled}:${after.seq}`)
  if (f.since !== undefined) p.set('since', String(f.since))
  if (f.until !== undefined) p.set('until', String(f.until))
  for (const t of f.types ?? []) p.append('type', t)
  for (const k of f.kinds ?? []) p.append('kind', k)
  p.set('limit', String(limit))
  const body = (await client.get('/v1/events', p)) as {
    entries?: unknown
    next?: unknown
    forked?: unknown
    retired?: unknown
  }
  if (!Array.isArray(body.entries) || !(body.next === null || typeof body.next === 'string')) {
    throw new CliError(`GET ${client.base}/v1/events: unexpected answer (is this a sledlog node?)`)
  }
  return {
    entries: body.entries as StoredEntry[],
    next: body.next === null ? null : parsePosition(body.next, 'after'),
    forked: typeof body.forked === 'object' && body.forked !== null ? (body.forked as Record<string, number>) : {},
    retired: typeof body.retired === 'object' && body.retired !== null ? (body.retired as Record<string, number>) : {},
  }
}
