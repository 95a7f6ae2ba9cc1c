/**
 * Equivocation fixtures: in-memory logs, versions of an equivocating sled's slots, what a log
 * shows of a sled (to compare replicas), and the digest-driven sync loop of a peer session.
 */
import { MemoryLevel } from 'memory-level'
import { onTestFinished } from 'vitest'
import type { EntryBody } from '../../src/core/entry.js'
import type { SledId } from '../../src/core/ids.js'
import type { KeyPair } from '../../src/core/signing.js'
import { encodeRuns, encodeRunsChunked } from '../../src/core/update-codec.js'
import { SledLog, type SledLogOptions } from '../../src/log/sled-log.js'
import { deriveMacKey, LevelStore, type StoreDatabase } from '../../src/store/level-store.js'
import { clientOf, runOf, signEntry, TEST_TS, testKeys } from './keys.js'

/** A fresh in-memory database (utf8 keys, byte values, as the store expects). */
export function memoryDb(): StoreDatabase {
  return new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
}

let nodeKeys = 1000

/**
 * Opens a log on an in-memory database (a fresh one unless `db` is given: a closed database
 * reopens the same data), closed when the test finishes.
 */
export async function memLog(
  opts: Partial<Omit<SledLogOptions, 'store'>> & { readonly db?: StoreDatabase } = {},
): Promise<{ log: SledLog; db: StoreDatabase; keys: KeyPair }> {
  const { db = memoryDb(), keys = testKeys(nodeKeys++), ...rest } = opts
  const log = new SledLog({ ...rest, keys, store: new LevelStore({ db, macKey: deriveMacKey(keys.seed) }) })
  await log.open()
  onTestFinished(() => log.close())
  return { log, db, keys }
}

/** The equivocating sled of these fixtures. */
export const EQUIVOCATOR: KeyPair = testKeys(1)

const cache = new Map<string, string>()

/** Version `k` of `keys`' entry `seq` (k = 0 is the "honest" one): distinct for every k. */
export function version(seq: number, k: number, keys: KeyPair = EQUIVOCATOR, pad = 0): string {
  const id = `${keys.sled}:${seq}:${k}:${pad}`
  let r = cache.get(id)
  if (r === undefined) {
    const body: EntryBody = {
      kind: 'event',
      type: 'v',
      payload: pad > 0 ? { seq, k, pad: 'x'.repeat(pad) } : { seq, k },
    }
    r = signEntry(keys, { sled: keys.sled, seq, ts: TEST_TS + seq, ...body })
    cache.set(id, r)
  }
  return r
}

/** A one-record update placing version `k` at `seq`. */
export function versionUpdate(seq: number, k: number, keys: KeyPair = EQUIVOCATOR): Uint8Array {
  return encodeRuns([runOf(keys, seq, [version(seq, k, keys)])])
}

/** Updates (≤ 1 MiB each) of a chain from seq 0 whose seq s holds version `ks[s]`. */
export function chainUpdates(ks: readonly number[], keys: KeyPair = EQUIVOCATOR): Uint8Array[] {
  return encodeRunsChunked(
    [
      runOf(
        keys,
        0,
        ks.map((k, seq) => version(seq, k, keys)),
      ),
    ],
    1 << 20,
  )
}

/** Applies updates one flush each; throws on a rejection. */
export async function applyAll(log: SledLog, updates: readonly Uint8Array[]): Promise<void> {
  for (const u of updates) {
    const r = await log.applyUpdate(u, 'test')
    if (!r.ok) throw new Error(`rejected: ${r.code} ${r.message}`)
  }
}

/** Everything a reader or a peer can tell about `sled` on a log: equal on replicas that agree. */
export function shows(log: SledLog, sled: SledId = EQUIVOCATOR.sled) {
  const client = clientOf({ sled } as KeyPair)
  return {
    proof: log.forkProof(sled),
    query: log.query({ sled, limit: 10_000 }),
    heads: log.heads()[sled],
    length: log.length(sled),
    digest: log.digests().find((d) => d.client === client),
    forks: log.status().forks.sleds,
  }
}

/**
 * Two logs sync as peer sessions do (PROTOCOL.md §8.3-8.4), each answering the other's state
 * vector, and a side whose digest of a sled differs at equal length refetching that sled from
 * seq 0, until nothing changes; returns the rounds it took.
 */
export async function syncPair(x: SledLog, y: SledLog, maxRounds = 6): Promise<number> {
  const sv = (log: SledLog): Map<number, number> => {
    const out = new Map<number, number>()
    for (const d of log.digests()) out.set(d.client, d.length)
    return out
  }
  const key = (log: SledLog): string => JSON.stringify(log.digests().map((d) => [d.client, d.length, [...d.hash]]))
  for (let round = 1; round <= maxRounds; round++) {
    const before = key(x) + key(y)
    for (const [from, to] of [
      [x, y],
      [y, x],
    ] as const) {
      const ask = sv(to)
      const theirs = new Map(from.digests().map((d) => [d.client, d]))
      for (const d of to.digests()) {
        const t = theirs.get(d.client)
        if (t !== undefined && t.length === d.length && Buffer.compare(t.hash, d.hash) !== 0) ask.set(d.client, 0)
      }
      for (const u of from.updatesSince(ask, 128 * 1024)) await to.applyUpdate(u, 'peer')
    }
    if (key(x) + key(y) === before) return round
  }
  return maxRounds
}
