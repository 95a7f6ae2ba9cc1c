/**
 * A consistent backup of a log (docs/PROTOCOL.md §7.4), streamed: the lengths of every sled are
 * fixed at one moment, and since a record below a sled's held length never changes (the log is
 * grow-only and an equivocation never replaces the version held), reading them afterwards, however
 * slowly a client takes them, gives exactly what the node held at that moment. Records are read
 * through {@link SledLog.heldRecords} only, so a store that keeps old entries elsewhere serves
 * backups through the same method.
 */
import type { SledId } from '../core/ids.js'
import { sledlogError } from '../errors.js'
import { DurableConsumer } from '../log/consumer.js'
import type { SledLog } from '../log/sled-log.js'
import { BACKUP_FORMAT, BACKUP_VERSION, BackupEncoder, type BackupHeader, type ForkLine } from './format.js'

/** Records read from the log per step. */
const READ_STEP = 1024

/** Text handed out per chunk, about: big enough to amortise a write, small enough to pace. */
const CHUNK_CHARS = 256 * 1024

/** A snapshot being streamed. */
export interface BackupStream {
  readonly header: BackupHeader
  /** Records the snapshot holds (all sleds). */
  readonly records: number
  /** The file's text in chunks, header to trailer; `onRecords` is told the records sent so far. */
  chunks(onRecords?: (sent: number) => void): AsyncGenerator<string>
}

/**
 * Takes the snapshot of `log`: consumer cursors first (so none points past the records fixed
 * next), then, in one synchronous step, every sled's held length and the fork proofs.
 */
export async function takeSnapshot(log: SledLog, now: () => number = Date.now): Promise<BackupStream> {
  const cursors = await DurableConsumer.cursors(log)
  const sleds: Record<string, number> = {}
  let records = 0
  for (const sled of log.sleds()) {
    const held = log.held(sled)
    if (held === 0) continue
    sleds[sled] = held
    records += held
  }
  const forks: ForkLine[] = []
  for (let after: SledId | undefined; ; ) {
    const page = log.forks(after === undefined ? { limit: 1000 } : { after, limit: 1000 })
    for (const f of page.forks) {
      const proof = log.forkProof(f.sled)
      if (proof !== undefined) forks.push({ sled: proof.sled, seq: proof.seq, records: [...proof.records] })
    }
    if (page.next === null) break
    after = page.next
  }
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    v: BACKUP_VERSION,
    node: log.sled,
    createdAt: now(),
    sleds,
    forks: forks.length,
    consumers: cursors.size,
  }
  return {
    header,
    records,
    async *chunks(onRecords) {
      const enc = new BackupEncoder()
      let text = enc.header(header)
      let sent = 0
      for (const [sled, held] of Object.entries(sleds) as Array<[SledId, number]>) {
        for (let from = 0; from < held; from += READ_STEP) {
          const to = Math.min(held, from + READ_STEP)
          const got = log.heldRecords(sled, from, to)
          // Fewer than fixed: the log closed under the backup (a node stopping or changing key).
          if (got.length !== to - from)
            throw sledlogError('LOG_CLOSED', `the log no longer holds ${sled.slice(0, 12)}…/${from}..${to - 1}`)
          for (let i = 0; i < got.length; i++) text += enc.record(sled, from + i, got[i] as string)
          sent += got.length
          if (text.length >= CHUNK_CHARS) {
            yield text
            text = ''
            onRecords?.(sent)
          }
        }
      }
      for (const f of forks) text += enc.fork(f)
      for (const [name, cursor] of cursors) text += enc.consumer({ name, cursor })
      yield text + enc.end()
      onRecords?.(sent)
    },
  }
}
