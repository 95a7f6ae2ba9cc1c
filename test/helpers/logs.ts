/**
 * Logs on real LevelDB in temp dirs, closed and removed when the test finishes.
 */
import { copyFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import * as Y from 'yjs'
import { Level } from 'level'
import { dbPath, openLog, type OpenLogOptions } from '../../src/log/open-log.js'
import type { StoredEntry } from '../../src/core/query.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { KEY_FILE } from '../../src/store/identity.js'
import { LevelStore, type CommitBatch } from '../../src/store/level-store.js'
import { tempDir } from './tmp.js'

/** Opens a log in `dir` (or a fresh temp dir) and closes it when the test finishes. */
export async function testLog(dir?: string, opts: OpenLogOptions = {}): Promise<{ log: SledLog; dir: string }> {
  const d = dir ?? (await tempDir())
  const log = await openLog(d, opts)
  onTestFinished(() => log.close())
  return { log, dir: d }
}

/** A fresh data dir holding a copy of `dir`'s key: a second node with the same identity. */
export async function cloneIdentity(dir: string): Promise<string> {
  const d = await tempDir()
  await mkdir(d, { recursive: true })
  await copyFile(join(dir, KEY_FILE), join(d, KEY_FILE))
  return d
}

/** Sends everything `from` has that `to` lacks, through `to`'s guard. */
export async function syncInto(from: SledLog, to: SledLog): Promise<void> {
  for (const update of from.updatesSince(Y.decodeStateVector(to.stateVector()), 64 * 1024)) {
    const r = await to.applyUpdate(update, 'test-peer')
    if (!r.ok) throw new Error(`sync rejected: ${r.code} ${r.message}`)
  }
}

/** A real store that can be told to fail its next writes, as a full or broken disk does. */
export class FailingStore extends LevelStore {
  failures = 0
  override async commit(batch: CommitBatch): Promise<void> {
    if (this.failures > 0) {
      this.failures--
      throw Object.assign(new Error('injected write failure'), { code: 'STORE_WRITE_FAILED' })
    }
    return super.commit(batch)
  }
}

/** Flips a byte inside the n-th stored update (negative: from the end) of `dir` (the log must be closed). */
export async function corruptUpdate(dir: string, n: number): Promise<void> {
  const db = new Level<string, Uint8Array>(dbPath(dir), { keyEncoding: 'utf8', valueEncoding: 'view' })
  const keys: string[] = []
  for await (const k of db.keys({ gte: 'u:', lt: 'u;' })) keys.push(k)
  const key = keys.at(n) as string
  const value = Buffer.from((await db.get(key)) as Uint8Array)
  value.writeUInt8((value.at(-10) as number) ^ 0x01, value.length - 10)
  await db.put(key, value)
  await db.close()
}

/** Every entry of the log's own sled, in seq order (paging through the query API). */
export function ownEntries(log: SledLog): StoredEntry[] {
  const out: StoredEntry[] = []
  let page = log.query({ sled: log.sled, limit: 10_000 })
  out.push(...page.entries)
  while (page.next !== null) {
    page = log.query({ sled: log.sled, limit: 10_000, after: page.next })
    out.push(...page.entries)
  }
  return out
}
