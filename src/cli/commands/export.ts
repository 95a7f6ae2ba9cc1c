/**
 * `sledlog export`: the signed records readers see, as NDJSON an independent verifier can check
 * against docs/PROTOCOL.md alone (§7.3), from a running node or a stopped node's data directory.
 */
import { exportLines, type ExportSource } from '../../backup/export.js'
import { isSledId, type SledId } from '../../core/ids.js'
import { MAX_LIMIT, type Heads, type StoredEntry } from '../../core/query.js'
import type { SledLog } from '../../log/sled-log.js'
import { intFlag, parseFlags } from '../args.js'
import { EXIT, UsageError } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-options.js'
import { help, type Command } from '../command.js'
import type { NodeClient } from '../http-client.js'
import { notice, write } from '../io.js'
import { targetOf } from '../target.js'

const OPTIONS = {
  url: { type: 'string' },
  data: { type: 'string' },
  sled: { type: 'string', multiple: true },
  'from-seq': { type: 'string' },
  'to-seq': { type: 'string' },
  'page-size': { type: 'string' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** `sledlog export`. */
export const exportCommand: Command = {
  name: 'export',
  help: `Usage: sledlog export (--url URL | --data DIR) [--sled SLED]… [--from-seq N] [--to-seq M]

Writes the signed records a reader sees as NDJSON on stdout, in (sled, seq) order, one line per
entry: {"sled":…,"seq":…,"record":"<signature>.<entry JSON>"}, the record exactly as its sled
signed it (docs/PROTOCOL.md §7.3). Anyone can check the file with 'sledlog verify --export FILE'
or their own verifier, against the protocol alone. A forked sled is exported below its fork, as
reads serve it. Streamed: each sled ends at the head it had when the export began.

Options:
  --sled SLED      only this sled; repeatable
  --from-seq N     each sled from seq N (default 0)
  --to-seq M       each sled up to seq M, inclusive (default: its head)
  --page-size N    entries per request (default 1000, at most ${MAX_LIMIT})

${CLIENT_HELP}

Exit codes: 0 ok; 1 the node or directory could not be read; 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, exportCommand)
    const target = await targetOf(v, 'export', io)
    for (const s of v.sled ?? [])
      if (!isSledId(s)) throw new UsageError(`--sled ${JSON.stringify(s)} is not a sled id (64 lowercase hex)`)
    const fromSeq = intFlag(v['from-seq'], 'from-seq')
    const toSeq = intFlag(v['to-seq'], 'to-seq')
    if (fromSeq !== undefined && toSeq !== undefined && toSeq < fromSeq)
      throw new UsageError('--to-seq must not be below --from-seq')
    const pageSize = intFlag(v['page-size'], 'page-size', 1, MAX_LIMIT) ?? 1000
    let log: SledLog | undefined
    try {
      let src: ExportSource
      if (target.kind === 'url') src = httpSource(target.client)
      else {
        log = await (await import('../data-dir.js')).openDataDir(target.dir, { onNotice: notice(io, 'export') })
        src = logSource(log)
      }
      const range = {
        pageSize,
        ...(v.sled === undefined ? {} : { sleds: v.sled as SledId[] }),
        ...(fromSeq === undefined ? {} : { fromSeq }),
        ...(toSeq === undefined ? {} : { toSeq }),
      }
      for await (const text of exportLines(src, range)) await write(io.stdout, text)
    } finally {
      await log?.close()
      if (target.kind === 'url') target.client.close()
    }
    return EXIT.OK
  },
}

/** Export from a stopped node's log. */
export function logSource(log: SledLog): ExportSource {
  return {
    heads: async () => log.heads(),
    page: async (sled, afterSeq, limit) => log.query({ sled, afterSeq, limit }).entries,
  }
}

/** Export from a running node's API: GET /v1/status for the heads, GET /v1/events per sled. */
function httpSource(client: NodeClient): ExportSource {
  return {
    heads: async () => ((await client.get('/v1/status')) as { heads: Heads }).heads,
    page: async (sled, afterSeq, limit) => {
      const q = new URLSearchParams({ sled, afterSeq: String(afterSeq), limit: String(limit) })
      return ((await client.get('/v1/events', q)) as { entries: StoredEntry[] }).entries
    },
  }
}
