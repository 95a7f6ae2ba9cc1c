/**
 * `sledlog backup`: a consistent, logical backup of a node (docs/PROTOCOL.md §7.4), from a running
 * node (GET /v1/backup, admin scope) or a stopped node's data directory. The file is written
 * under a temporary name, checked line by line as it arrives (structure, counts, checksum), and
 * renamed into place only once its trailer verified: a cut stream never leaves a file that looks
 * like a backup.
 */
import { open, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BackupDecoder, LINE_LIMIT } from '../../backup/format.js'
import { takeSnapshot } from '../../backup/snapshot.js'
import { syncDir } from '../../store/identity.js'
import { parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-options.js'
import { help, type Command } from '../command.js'
import type { NodeClient } from '../http-client.js'
import { type CliIo, notice } from '../io.js'
import { readLines } from '../lines.js'
import { progressBar } from '../progress.js'
import { targetOf } from '../target.js'

const OPTIONS = {
  url: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** What a finished backup holds. */
export interface BackupSummary {
  readonly out: string
  readonly node: string
  readonly records: number
  readonly sleds: number
  readonly forks: number
  readonly consumers: number
  readonly bytes: number
}

/** `sledlog backup`. */
export const backup: Command = {
  name: 'backup',
  help: `Usage: sledlog backup (--url URL | --data DIR) --out FILE

Writes a consistent backup of a node to FILE: every record it holds (all sleds, each with its
original signature), its fork proofs and its durable consumers' cursors, as they were at one
moment, with a trailer (record count and SHA-256) so a truncated or damaged file is refused
(docs/PROTOCOL.md §7.4). --url backs up a running node (GET /v1/backup; the API token needs the
admin scope) while it keeps taking writes; --data a stopped node's directory, never modified.

NOT in the backup: the node's key (sled.key; back it up separately, and keep it secret) and
its API tokens. Restore with 'sledlog restore --in FILE --data DIR [--key KEYFILE]'.

The file is written as FILE.partial and renamed to FILE once complete and checked; FILE must not
exist. Progress goes to stderr (a bar on a terminal), and one summary line at the end.

Options:
  --out FILE       where to write the backup

${CLIENT_HELP}

Exit codes: 0 ok; 1 the node or directory could not be read, or the stream broke off; 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, backup)
    if (v.out === undefined) throw new UsageError('backup needs --out FILE')
    const out = v.out
    if (await exists(out)) throw new CliError(`${out} exists: give a new file name (a backup never overwrites)`)
    const target = await targetOf(v, 'backup', io)
    const bar = progressBar(io.stderr, 'backup', 'records')
    const started = Date.now()
    let summary: BackupSummary
    try {
      summary =
        target.kind === 'url'
          ? await writeChecked(out, await download(target.client), bar.update)
          : await backupDataDir(target.dir, out, io, bar.update)
    } finally {
      bar.finish()
      if (target.kind === 'url') target.client.close()
    }
    const secs = Math.max((Date.now() - started) / 1000, 0.001)
    notice(
      io,
      'backup',
    )(
      `wrote ${summary.out}: ${summary.records} records of ${summary.sleds} sleds, ${summary.forks} fork proofs, ` +
        `${summary.consumers} consumers, ${summary.bytes} bytes in ${secs.toFixed(1)} s ` +
        `(node ${summary.node}; its key is not in the backup)`,
    )
    return EXIT.OK
  },
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** The body of GET /v1/backup, as it arrives. */
async function download(client: NodeClient): Promise<AsyncIterable<Buffer | string>> {
  const answer = await client.stream('/v1/backup', { accept: 'application/x-ndjson' }, new AbortController().signal)
  if (answer.status !== 200) throw await answer.error()
  return (async function* () {
    try {
      yield* answer.body
    } catch (err) {
      throw new CliError(`the backup stream from ${client.base} broke off: ${(err as Error).message}`)
    }
  })()
}

/** Backs up a stopped node's data directory into `out`. */
export async function backupDataDir(
  dir: string,
  out: string,
  io: CliIo,
  onRecords: (done: number, total?: number) => void = () => undefined,
): Promise<BackupSummary> {
  const { openDataDir } = await import('../data-dir.js')
  const log = await openDataDir(dir, { onNotice: notice(io, 'backup') })
  try {
    const snap = await takeSnapshot(log)
    return await writeChecked(out, snap.chunks(), onRecords)
  } finally {
    await log.close()
  }
}

/**
 * Writes `chunks` to `out`.partial while checking them as a backup, then fsyncs and renames the
 * file into place; on any failure the partial file is removed and nothing is left at `out`.
 */
export async function writeChecked(
  out: string,
  chunks: AsyncIterable<Buffer | string>,
  onRecords: (done: number, total?: number) => void,
): Promise<BackupSummary> {
  const partial = `${out}.partial`
  const fh = await open(partial, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err
    throw new CliError(`${partial} exists (another backup is writing it, or one was killed): remove it first`)
  })
  let bytes = 0
  const decoder = new BackupDecoder()
  const tee = async function* (): AsyncGenerator<Buffer | string> {
    for await (const chunk of chunks) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      await fh.write(b)
      bytes += b.length
      yield b
    }
  }
  let forks = 0
  let consumers = 0
  try {
    let lines = 0
    for await (const line of readLines(tee(), LINE_LIMIT)) {
      lines = line.n
      const item = decoder.line(line.text, line.n)
      if (item.kind === 'record' && decoder.records % 1024 === 0) onRecords(decoder.records, decoder.totalRecords)
      else if (item.kind === 'fork') forks++
      else if (item.kind === 'consumer') consumers++
    }
    decoder.finish(lines)
    onRecords(decoder.records, decoder.totalRecords)
    await fh.sync()
    await fh.close()
    await rename(partial, out)
    await syncDir(dirname(out))
  } catch (err) {
    await fh.close().catch(() => undefined)
    await rm(partial, { force: true })
    throw err
  }
  const h = decoder.header
  return {
    out,
    node: h?.node ?? '',
    records: decoder.records,
    sleds: Object.keys(h?.sleds ?? {}).length,
    forks,
    consumers,
    bytes,
  }
}
