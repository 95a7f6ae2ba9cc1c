/**
 * The `RECOVERING` file in a data directory (docs/PROTOCOL.md §7.1): present from the moment a
 * node starts recovering its own head until the recovery ends, so a restart in between (whose
 * store now exists, partly refilled) recovers again. It carries what the recovery must not forget
 * across that restart: when it began and the most own entries a peer proved exist, so a peer
 * that proved them and is down at the next start still holds the node back.
 */
import { open, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { RecoveryResume } from '../sync/recovery.js'

/** The marker's file name in the data directory. */
export const RECOVERING_FILE = 'RECOVERING'

/** The marker of one data directory. Writes are serialized; each is durable when it resolves. */
export class RecoveryMarker {
  readonly #path: string
  #queue: Promise<void> = Promise.resolve()

  constructor(dataDir: string) {
    this.#path = join(dataDir, RECOVERING_FILE)
  }

  /**
   * The recovery an earlier run left unfinished, or null when there is no marker. A marker that
   * cannot be parsed (an empty one of an earlier version, a torn write) still means "recovering",
   * from now, with nothing proven yet.
   */
  async read(): Promise<RecoveryResume | null> {
    let text: string
    try {
      text = await readFile(this.#path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    try {
      const v = JSON.parse(text) as { since?: unknown; need?: unknown }
      const since = typeof v.since === 'number' && Number.isSafeInteger(v.since) ? v.since : Date.now()
      const need = typeof v.need === 'number' && Number.isSafeInteger(v.need) && v.need >= 0 ? v.need : 0
      return { since, need }
    } catch {
      return { since: Date.now(), need: 0 }
    }
  }

  /** Writes `r` durably: a temporary file, fsynced, renamed over the marker. */
  write(r: RecoveryResume): Promise<void> {
    return this.#then(async () => {
      const tmp = `${this.#path}.tmp`
      const f = await open(tmp, 'w', 0o600)
      try {
        await f.writeFile(`${JSON.stringify({ since: r.since, need: r.need })}\n`)
        await f.sync()
      } finally {
        await f.close()
      }
      await rename(tmp, this.#path)
      await syncDir(dirname(this.#path))
    })
  }

  /** Removes the marker once the writes before it are done. */
  remove(): Promise<void> {
    return this.#then(() => rm(this.#path, { force: true }))
  }

  #then(step: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(step)
    // A failed write must not block the ones after it; the caller hears of it.
    this.#queue = next.catch(() => undefined)
    return next
  }
}

/** Fsyncs a directory, so a file created or renamed in it survives a crash (best effort: not every platform can). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  } catch {
    // Directories cannot be opened for fsync on some platforms (Windows): the rename stands.
  }
}
