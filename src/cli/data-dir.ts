/**
 * Opens a stopped node's data directory for the offline commands (append, read, status,
 * verify). Unlike `openLog` it never creates a key: a typo in `--data` must be an error, not a
 * fresh empty node. And it says plainly when the directory belongs to a running node.
 */
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { dbPath } from '../log/open-log.js'
import { SledLog } from '../log/sled-log.js'
import { keyPath, loadIdentity } from '../store/identity.js'
import { deriveMacKey, LevelStore, type StoredUpdate } from '../store/level-store.js'
import { CliError } from './cli-error.js'

/** Options of {@link openDataDir}. */
export interface OpenDataDirOptions {
  /** Create the database if the directory has only a key (for imports into a new node). */
  readonly create?: boolean
  /** How stored records are checked (see SledLogOptions). */
  readonly verifyOnOpen?: 'mac' | 'full'
  /** fsync each commit. */
  readonly sync?: boolean
  /** Called with each stored record as the log loads it (progress, MAC statistics). */
  readonly onRecord?: (record: StoredUpdate) => void
  /**
   * Let the open move refused records into quarantine (see SledLogOptions.quarantineOnOpen).
   * Default: only when the caller writes (`create`), so read, status and verify never modify.
   */
  readonly quarantineOnOpen?: boolean
}

/** A store that reports each record it yields. */
class ObservedStore extends LevelStore {
  readonly #onRecord: (record: StoredUpdate) => void
  constructor(opts: ConstructorParameters<typeof LevelStore>[0], onRecord: (record: StoredUpdate) => void) {
    super(opts)
    this.#onRecord = onRecord
  }
  override async *updates(): AsyncGenerator<StoredUpdate> {
    for await (const record of super.updates()) {
      this.#onRecord(record)
      yield record
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
 * key, no database (unless `create`), or a running node holds the database.
 */
export async function openDataDir(dir: string, opts: OpenDataDirOptions = {}): Promise<SledLog> {
  const keys = await loadIdentity(dir)
  if (keys === undefined) {
    throw new CliError(
      `${dir} is not a sledlog data directory: there is no ${keyPath(dir)} (create a node with: sledlog keygen --data ${dir})`,
    )
  }
  if (opts.create !== true && !(await hasDatabase(dir))) {
    throw new CliError(`${dir} has a key but no database (${dbPath(dir)}): the node has never run`)
  }
  const storeOpts = {
    path: dbPath(dir),
    macKey: deriveMacKey(keys.seed),
    ...(opts.sync === undefined ? {} : { sync: opts.sync }),
  }
  const store = opts.onRecord === undefined ? new LevelStore(storeOpts) : new ObservedStore(storeOpts, opts.onRecord)
  const log = new SledLog({
    keys,
    store,
    quarantineOnOpen: opts.quarantineOnOpen ?? opts.create === true,
    ...(opts.verifyOnOpen === undefined ? {} : { verifyOnOpen: opts.verifyOnOpen }),
  })
  try {
    await log.open()
  } catch (err) {
    throw explainOpenError(dir, err)
  }
  return log
}

/**
 * Counts the stored records (snapshot chunks and updates) of a data directory without loading
 * them, so a progress bar can show a total. Reads keys only.
 */
export async function countRecords(dir: string): Promise<number> {
  const db = new Level<string, Uint8Array>(dbPath(dir), {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
    createIfMissing: false,
  })
  try {
    await db.open()
  } catch (err) {
    throw explainOpenError(dir, err)
  }
  try {
    let n = 0
    for await (const _ of db.keys({ gte: 's:', lt: 's;' })) n++
    for await (const _ of db.keys({ gte: 'u:', lt: 'u;' })) n++
    return n
  } finally {
    await db.close()
  }
}

/**
 * Turns LevelDB's "locked" failure (another process holds the database) into a one-line
 * {@link CliError} naming `dir`; other errors pass through. `advice` ends the message.
 */
export function explainOpenError(
  dir: string,
  err: unknown,
  advice = 'stop the node, or use --url to talk to it',
): unknown {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === 'LEVEL_LOCKED') {
      return new CliError(
        `${dir} is in use by another process, most likely a running node (its database is locked): ${advice}`,
      )
    }
  }
  return err
}
