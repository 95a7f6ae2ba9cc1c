/**
 * `sledlog restore`: a backup (docs/PROTOCOL.md §7.4) into a new data directory. Every record goes
 * through the guard like a peer's update (full verification; the original signatures kept, never
 * re-signed), fork proofs are offered like a peer offers them, consumer cursors are stored, and
 * the result is verified in full before it becomes the directory. All of it happens in a
 * temporary directory beside the target, renamed into place at the end: a refused backup, a
 * failure or a kill -9 leaves no directory a node would start from.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { BackupDecoder, LINE_LIMIT, type BackupHeader } from '../../backup/format.js'
import { clientIdOf, rootNameOf, type SledId } from '../../core/ids.js'
import { encodeRuns } from '../../core/update-codec.js'
import { sledlogError } from '../../errors.js'
import { DurableConsumer } from '../../log/consumer.js'
import { openLog } from '../../log/open-log.js'
import type { ApplyResult, SledLog } from '../../log/sled-log.js'
import { RecoveryMarker } from '../../node/recovery-marker.js'
import { loadKeyFile, saveIdentity, syncDir } from '../../store/identity.js'
import { parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { type InStream, notice } from '../io.js'
import { readLines } from '../lines.js'
import { progressBar } from '../progress.js'
import { describe as describeVerify, verifyDataDir, type VerifyReport } from './verify.js'

const OPTIONS = {
  in: { type: 'string' },
  data: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** Records handed to the guard per update (and at most this many bytes of them, about). */
const APPLY_RECORDS = 2048
const APPLY_BYTES = 1024 * 1024

/** Updates being checked at once: the guard verifies one while the next is read and parsed. */
const IN_FLIGHT = 2

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  /** The backup's bytes. */
  readonly input: InStream
  /** The data directory to create: absent, or an empty directory. */
  readonly dir: string
  /**
   * A key file for the restored node (the backed-up node's own key, kept separately). Without
   * one the directory gets a new key, which signed nothing and so needs no recovery.
   */
  readonly keyFile?: string
  /** Told (records applied, records in the backup) as the restore goes. */
  readonly onProgress?: (done: number, total: number) => void
  readonly onNotice?: (text: string) => void
}

/** What a restore did. */
export interface RestoreReport {
  readonly dir: string
  /** The sled of the backed-up node, and of the restored directory's key. */
  readonly node: SledId
  readonly sled: SledId
  readonly records: number
  readonly forks: number
  readonly consumers: number
  /** True when the directory was marked RECOVERING: its key predates the restored store. */
  readonly recovering: boolean
  /** The own entries the restored store holds (the recovery's starting proof). */
  readonly ownEntries: number
  readonly verify: VerifyReport
}

/** `sledlog restore`. */
export const restore: Command = {
  name: 'restore',
  help: `Usage: sledlog restore --in FILE --data DIR [--key KEYFILE]

Restores a backup made by 'sledlog backup' into DIR, which must not exist or be empty. Every
record is checked like a peer's update (every signature verified; the original signatures are
kept, nothing is signed again), fork proofs and consumer cursors are restored, and the result is
verified in full ('sledlog verify') before DIR appears: a truncated, damaged or forged backup is
refused and leaves nothing behind (the work happens in a temporary directory next to DIR).

--key KEYFILE gives the restored node its key (the backed-up node's key file, kept apart from the
backup). That key may have signed entries after the backup was taken, so the directory is marked
RECOVERING: at its first start the node refuses writes until its peers prove how many of its
entries exist (docs/ARCHITECTURE.md "Recovery"), then, by default, moves to a successor key.
Without --key the directory gets a new key: a new node holding the backed-up entries.

Options:
  --in FILE        the backup file
  --data DIR       the data directory to create
  --key KEYFILE    the key the restored node runs with (mode 0600)

Exit codes: 0 restored; 1 the backup was refused or the restore failed (nothing was written); 2 bad
usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, restore)
    if (v.in === undefined || v.data === undefined) throw new UsageError('restore needs --in FILE and --data DIR')
    const bar = progressBar(io.stderr, 'restore', 'records')
    let report: RestoreReport
    try {
      report = await restoreBackup({
        input: createReadStream(v.in),
        dir: v.data,
        ...(v.key === undefined ? {} : { keyFile: v.key }),
        onProgress: (done, total) => bar.update(done, total),
        onNotice: notice(io, 'restore'),
      })
    } finally {
      bar.finish()
    }
    const say = notice(io, 'restore')
    say(
      `restored ${report.records} records, ${report.forks} fork proofs and ${report.consumers} consumers ` +
        `of node ${report.node} into ${report.dir} (key ${report.sled})`,
    )
    if (report.recovering)
      say(
        `${report.dir} is marked RECOVERING: at its first start the node refuses writes until its peers prove ` +
          `how many of its entries exist (it holds ${report.ownEntries}), then moves to a successor key`,
      )
    io.stderr.write(describeVerify(report.verify))
    return EXIT.OK
  },
}

/** The target must not exist, or be an empty directory. */
async function assertEmptyTarget(dir: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return
    if (code === 'ENOTDIR') throw new CliError(`${dir} is a file, not a directory`)
    throw err
  }
  if (names.length > 0) throw new CliError(`${dir} is not empty: restore only into a new or empty directory`)
}

/** Restores a backup; see {@link restore}. Throws and leaves nothing at `dir` when refused. */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreReport> {
  const { dir } = opts
  await assertEmptyTarget(dir)
  const keys = opts.keyFile === undefined ? undefined : (await loadKeyFile(opts.keyFile))?.keys
  if (opts.keyFile !== undefined && keys === undefined) throw new CliError(`${opts.keyFile} does not exist`)
  const parent = dirname(dir)
  await mkdir(parent, { recursive: true })
  // Beside the target, so the final rename stays on one file system; dot-named, so no one
  // mistakes a half-restored one for a data directory.
  const prefix = `.${basename(dir)}.restoring-`
  await removeAbandoned(parent, prefix)
  const tmp = join(parent, `${prefix}${process.pid}-${randomBytes(4).toString('hex')}`)
  await mkdir(tmp, { mode: 0o700 })
  try {
    if (keys !== undefined) await saveIdentity(tmp, keys)
    const log = await openLog(tmp)
    let applied: Applied
    let ownEntries: number
    try {
      applied = await applyBackup(log, opts)
      ownEntries = log.held(log.sled)
    } finally {
      await log.close()
    }
    const recovering = keys !== undefined
    if (keys !== undefined && keys.sled !== applied.header.node)
      opts.onNotice?.(`the key's sled ${keys.sled} is not the backed-up node ${applied.header.node}`)
    // The key may have signed more since the backup: prove the head before appending.
    if (recovering) await new RecoveryMarker(tmp).write({ since: Date.now(), need: ownEntries })
    const verify = await verifyDataDir(tmp)
    if (verify.problems.length > 0)
      throw sledlogError('BACKUP_INVALID', `the restored store does not verify: ${verify.problems.join('; ')}`)
    await assertEmptyTarget(dir)
    await rename(tmp, dir)
    await syncDir(parent)
    return {
      dir,
      node: applied.header.node,
      sled: verify.sled as SledId,
      records: applied.records,
      forks: applied.forks,
      consumers: applied.consumers,
      recovering,
      ownEntries,
      verify: { ...verify, dir },
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    throw err
  }
}

/**
 * Removes what restores into the same target left when they were killed (their process is gone):
 * half a store, and a copy of the key that must not linger.
 */
async function removeAbandoned(parent: string, prefix: string): Promise<void> {
  for (const name of await readdir(parent)) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length).split('-')[0])
    if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) continue
    await rm(join(parent, name), { recursive: true, force: true })
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

interface Applied {
  readonly header: BackupHeader
  readonly records: number
  readonly forks: number
  readonly consumers: number
}

/** Applies the backup's lines to `log` through the guard; throws on the first refusal. */
async function applyBackup(log: SledLog, opts: RestoreOptions): Promise<Applied> {
  const decoder = new BackupDecoder()
  const pending: Array<{ result: Promise<ApplyResult>; what: string; records: number }> = []
  let applied = 0
  const settle = async (keep: number): Promise<void> => {
    while (pending.length > keep) {
      const p = pending.shift() as (typeof pending)[number]
      const r = await p.result
      if (!r.ok) throw sledlogError(r.code, `${p.what}: refused by the guard: ${r.message}`)
      applied += p.records
      opts.onProgress?.(applied, decoder.totalRecords)
    }
  }
  let run: { sled: SledId; clock: number; records: string[]; bytes: number; line: number } | null = null
  const flush = async (): Promise<void> => {
    if (run === null) return
    const r = run
    run = null
    const update = encodeRuns([
      { client: clientIdOf(r.sled), clock: r.clock, rootName: rootNameOf(r.sled), records: r.records },
    ])
    const last = r.clock + r.records.length - 1
    pending.push({
      result: log.applyUpdate(update, 'restore'),
      what: `backup lines ${r.line}..${r.line + r.records.length - 1} (${r.sled.slice(0, 12)}…/${r.clock}..${last})`,
      records: r.records.length,
    })
    await settle(IN_FLIGHT - 1)
  }
  let forks = 0
  let consumers = 0
  let lines = 0
  for await (const { n, text } of readLines(opts.input, LINE_LIMIT)) {
    lines = n
    const item = decoder.line(text, n)
    if (item.kind === 'record') {
      const { sled, seq, record } = item.line
      if (run !== null && (run.sled !== sled || run.records.length >= APPLY_RECORDS || run.bytes >= APPLY_BYTES))
        await flush()
      run ??= { sled, clock: seq, records: [], bytes: 0, line: n }
      run.records.push(record)
      run.bytes += record.length
      continue
    }
    await flush()
    await settle(0)
    if (item.kind === 'fork') {
      // Offered as a peer offers a proof (PROTOCOL.md §8.3): the held version is a duplicate,
      // the other an equivocation the guard verifies and joins.
      const { sled, seq } = item.fork
      for (const record of item.fork.records) {
        const update = encodeRuns([
          { client: clientIdOf(sled), clock: seq, rootName: rootNameOf(sled), records: [record] },
        ])
        const r = await log.applyUpdate(update, 'restore')
        if (!r.ok)
          throw sledlogError(r.code, `backup line ${n} (fork proof of ${sled.slice(0, 12)}…/${seq}): ${r.message}`)
      }
      forks++
    } else if (item.kind === 'consumer') {
      await DurableConsumer.restore(log, item.consumer.name, item.consumer.cursor)
      consumers++
    }
  }
  await flush()
  await settle(0)
  decoder.finish(lines)
  return { header: decoder.header as BackupHeader, records: decoder.records, forks, consumers }
}
