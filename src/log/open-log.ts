/**
 * Opens the log of a data directory: `<dir>/sled.key` and the LevelDB database `<dir>/db`.
 */
import { join } from 'node:path'
import { deriveMacKey, LevelStore } from '../store/level-store.js'
import { assertNoPendingRotation, loadOrCreateIdentity } from '../store/identity.js'
import { SledLog, type SledLogOptions } from './sled-log.js'

/** Options of {@link openLog}: those of a {@link SledLog} except the collaborators it builds. */
export type OpenLogOptions = Omit<SledLogOptions, 'keys' | 'store'> & {
  /** fsync each commit (survives power loss) instead of relying on the OS page cache. */
  readonly sync?: boolean
}

/** Path of the LevelDB database inside a data directory. */
export function dbPath(dir: string): string {
  return join(dir, 'db')
}

/**
 * Loads (or creates) the node key of `dir`, opens its store and rebuilds the log. The caller
 * owns the returned log and must `close()` it.
 */
export async function openLog(dir: string, opts: OpenLogOptions = {}): Promise<SledLog> {
  // A half-done rotation must be finished first: the key in sled.key may already be retired.
  await assertNoPendingRotation(dir)
  const keys = await loadOrCreateIdentity(dir)
  const { sync, ...logOpts } = opts
  const store = new LevelStore({
    path: dbPath(dir),
    macKey: deriveMacKey(keys.seed),
    ...(sync === undefined ? {} : { sync }),
  })
  const log = new SledLog({ ...logOpts, keys, store })
  await log.open()
  return log
}
