/**
 * Opens a stopped node's data directory for the offline commands (append, read, status,
 * verify). Unlike `openLog` it never creates a key: a typo in `--data` must be an error, not a
 * fresh empty node. It says plainly when the directory belongs to a running node. And it reads
 * directories it cannot write (a read-only mount, another user's files, a full disk): LevelDB
 * cannot open a database read-only (it takes a LOCK file and writes its LOG), so the readers open
 * a private copy of the database in the temp directory instead.
 */
import { access, chmod, copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import type { SledId } from '../core/ids.js'
import { dbPath } from '../log/open-log.js'
import { SledLog } from '../log/sled-log.js'
import { keyPath, loadIdentity } from '../store/identity.js'
import { deriveMacKey, LevelStore, type StoredUpdate } from '../store/level-store.js'
import { CliError } from './cli-error.js'
import { diskMessage, diskProblem, isReadOnly, type DiskProblem } from './disk-errors.js'

/** Options of {@link openDataDir}. */
export interface OpenDataDirOptions {
  /** Create the database if the directory has only a key (for imports into a new node). */
  readonly create?: boolean
  /** Admin keys, as the node is configured: they decide which admin revocations retire a sled. */
  readonly adminKeys?: readonly SledId[]
  /** How stored records are checked (see SledLogOptions). */
  readonly verifyOnOpen?: 'mac' | 'full'
  /** fsync each commit. */
  readonly sync?: boolean
  /** Called with each stored record as the log loads it (progress, MAC statistics). */
  readonly onRecord?: (record: StoredUpdate) => void
  /** Called before loading with the number of stored records, which costs a scan of the keys. */
  readonly onCount?: (records: number) => void
  /** Where a one-line notice goes (a read from a copy); stderr in the commands. */
  readonly onNotice?: (text: string) => void
  /**
   * Let the open move refused records into quarantine (see SledLogOptions.quarantineOnOpen).
   * Default: only when the caller writes (`create`), so read, status and verify never modify.
   */
  readonly quarantineOnOpen?: boolean
}

/** A store that reports each record it yields and cleans up after itself when closed. */
class DataDirStore extends LevelStore {
  readonly #onRecord: ((record: StoredUpdate) => void) | undefined
  readonly #onClose: () => Promise<void>
  constructor(
    opts: ConstructorParameters<typeof LevelStore>[0],
    onRecord: ((record: StoredUpdate) => void) | undefined,
    onClose: () => Promise<void>,
  ) {
    super(opts)
    this.#onRecord = onRecord
    this.#onClose = onClose
  }
  override async *updates(): AsyncGenerator<StoredUpdate> {
    for await (const record of super.updates()) {
      this.#onRecord?.(record)
      yield record
    }
  }
  override async close(): Promise<void> {
    try {
      await super.close()
    } finally {
      await this.#onClose()
    }
  }
}

/** True when `dir` holds a LevelDB database. */
export async function hasDatabase(dir: string): Promise<boolean> {
  try {
    await access(join(dbPath(dir), 'CURRENT'))
    return true
  } catch {
    return false
  }
}

/**
 * Opens the log of a stopped node's data directory. Throws a {@link CliError} when there is no
 * key, no database (unless `create`), a running node holds the database, or the disk fails.
 */
export async function openDataDir(dir: string, opts: OpenDataDirOptions = {}): Promise<SledLog> {
  const writing = opts.create === true
  let keys: Awaited<ReturnType<typeof loadIdentity>>
  try {
    keys = await loadIdentity(dir)
  } catch (err) {
    throw explainOpenError(dir, err, { role: writing ? 'write' : 'read' })
  }
  if (keys === undefined) {
    throw new CliError(
      `${dir} is not a sledlog data directory: there is no ${keyPath(dir)} ` +
        `(create a node with: sledlog keygen --data ${dir})`,
    )
  }
  if (!writing && !(await hasDatabase(dir))) {
    throw new CliError(`${dir} has a key but no database (${dbPath(dir)}): the node has never run`)
  }
  const db = writing ? { path: dbPath(dir), dispose: async () => undefined } : await readableDb(dir, opts.onNotice)
  try {
    if (opts.onCount !== undefined) opts.onCount(await countRecords(db.path))
    const store = new DataDirStore(
      {
        path: db.path,
        macKey: deriveMacKey(keys.seed),
        ...(opts.sync === undefined ? {} : { sync: opts.sync }),
      },
      opts.onRecord,
      db.dispose,
    )
    const log = new SledLog({
      keys,
      store,
      quarantineOnOpen: opts.quarantineOnOpen ?? writing,
      ...(opts.adminKeys === undefined ? {} : { adminKeys: opts.adminKeys }),
      ...(opts.verifyOnOpen === undefined ? {} : { verifyOnOpen: opts.verifyOnOpen }),
    })
    await log.open()
    return log
  } catch (err) {
    // A failed open has closed the store (and so disposed of a copy); disposing twice is harmless.
    await db.dispose()
    throw explainOpenError(dir, err, { role: writing ? 'write' : 'read' })
  }
}

/**
 * The database of `dir` as a reader can open it: in place when LevelDB can open it there,
 * otherwise (read-only file system, no permission, full disk) a private copy in the temp
 * directory, removed by `dispose`. Opening in place first keeps the common case free of copies.
 */
async function readableDb(
  dir: string,
  onNotice: ((text: string) => void) | undefined,
): Promise<{ path: string; dispose: () => Promise<void> }> {
  const path = dbPath(dir)
  const probe = new Level<string, Uint8Array>(path, { createIfMissing: false })
  try {
    await probe.open()
    await probe.close()
    return { path, dispose: async () => undefined }
  } catch (err) {
    const problem = diskProblem(err)
    if (problem === undefined) throw explainOpenError(dir, err)
    return copyDb(dir, problem, onNotice)
  }
}

/** Copies the database files of `dir` into a fresh temp directory, writable by this user. */
async function copyDb(
  dir: string,
  why: DiskProblem,
  onNotice: ((text: string) => void) | undefined,
): Promise<{ path: string; dispose: () => Promise<void> }> {
  const from = dbPath(dir)
  let names: string[]
  try {
    names = await readdir(from)
  } catch (err) {
    throw explainOpenError(dir, err)
  }
  // Sized first, so a failure can say how much room the copy needs.
  const files: Array<{ name: string; size: number }> = []
  try {
    for (const name of names) {
      // LevelDB keeps no subdirectories; the open recreates LOCK, and LOG is its own diary.
      if (name === 'LOCK' || name.startsWith('LOG')) continue
      const st = await stat(join(from, name))
      if (st.isFile()) files.push({ name, size: st.size })
    }
  } catch (err) {
    throw explainOpenError(dir, err)
  }
  const bytes = files.reduce((n, f) => n + f.size, 0)
  const copy = await mkdtemp(join(tmpdir(), 'sledlog-read-'))
  const dispose = () => rm(copy, { recursive: true, force: true })
  try {
    for (const f of files) {
      await copyFile(join(from, f.name), join(copy, f.name))
      // The copy keeps the source's mode (0444 on a read-only tree); LevelDB must write it.
      await chmod(join(copy, f.name), 0o600)
    }
  } catch (err) {
    await dispose()
    const p = diskProblem(err)
    if (p !== undefined && isReadOnly(p) && p.path?.startsWith(from) === true) throw explainOpenError(dir, err)
    throw new CliError(
      `cannot read ${dir}: its database cannot be opened in place (${why.code}), and copying it to ` +
        `${copy} failed (${p?.code ?? (err as Error).message}); set TMPDIR to a directory with ` +
        `${megabytes(bytes)} free`,
    )
  }
  onNotice?.(
    `${from} cannot be opened in place (${why.code}${why.code === 'ENOSPC' ? ': disk full' : ''}); ` +
      `reading a private copy (${megabytes(bytes)}) in ${copy}, removed afterwards`,
  )
  return { path: copy, dispose }
}

const megabytes = (n: number): string => `${(n / 1e6).toFixed(1)} MB`

/** Counts the stored records (snapshot chunks and updates) of a database without loading them. */
async function countRecords(path: string): Promise<number> {
  const db = new Level<string, Uint8Array>(path, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
    createIfMissing: false,
  })
  await db.open()
  try {
    let n = 0
    for await (const _ of db.keys({ gte: 's:', lt: 's;' })) n++
    for await (const _ of db.keys({ gte: 'u:', lt: 'u;' })) n++
    return n
  } finally {
    await db.close()
  }
}

/** Options of {@link explainOpenError}. */
export interface ExplainOptions {
  /** Ends the "in use by another process" message (default: stop the node, or use --url). */
  readonly advice?: string
  /** Who failed, for the advice on disk failures (default `read`). */
  readonly role?: 'node' | 'write' | 'read'
}

/**
 * Turns the failures an operator must act on into a one-line {@link CliError} naming `dir`:
 * LevelDB's "locked" (another process holds the database) and disk failures (full, read-only,
 * not permitted). Other errors pass through.
 */
export function explainOpenError(dir: string, err: unknown, opts: ExplainOptions = {}): unknown {
  const advice = opts.advice ?? 'stop the node, or use --url to talk to it'
  const role = opts.role ?? 'read'
  if (err instanceof CliError) return err
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === 'LEVEL_LOCKED') {
      return new CliError(
        `${dir} is in use by another process, most likely a running node (its database is locked): ${advice}`,
      )
    }
  }
  const p = diskProblem(err)
  if (p === undefined) return err
  if (role !== 'read') return new CliError(diskMessage(p, dir, role))
  // A reader copes with everything but not being allowed to read at all.
  return new CliError(
    isReadOnly(p)
      ? `no permission to read ${p.path ?? dir} (${p.code}): run as a user who may read it (its owner, or root)`
      : `cannot read ${dir}: ${diskMessage(p, dir, 'write')}`,
  )
}
