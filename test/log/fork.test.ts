/**
 * The fork rule in a log (PROTOCOL.md §6.2): whatever order and grouping the versions of an
 * equivocating sled arrive in, and whichever version a log holds, replicas that saw the same
 * versions hold the same fork, read the same and digest the same; the state is one proof per
 * sled in the store, survives restarts, spreads with sync, and refuses the node's own appends.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Fork } from '../../src/core/fork.js'
import type { SledId } from '../../src/core/ids.js'
import { encodeRuns } from '../../src/core/update-codec.js'
import { DurableConsumer } from '../../src/log/consumer.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { forkKey } from '../../src/store/level-store.js'
import {
  applyAll,
  chainUpdates,
  EQUIVOCATOR as S,
  memLog,
  memoryDb,
  shows,
  syncPair,
  version,
  versionUpdate,
} from '../helpers/forks.js'
import { clientOf, runOf, testKeys } from '../helpers/keys.js'
import { prng, testSeed } from '../helpers/seed.js'

/** Every ordering of `xs`. */
function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]))
}

/** The rule from scratch over versions given as [seq, k]: lowest seq with two, two smallest there. */
function expectedFork(seen: ReadonlyArray<readonly [number, number]>): Fork | undefined {
  const bySeq = new Map<number, Set<string>>()
  for (const [seq, k] of seen) bySeq.set(seq, (bySeq.get(seq) ?? new Set()).add(version(seq, k)))
  const seqs = [...bySeq].filter(([, v]) => v.size > 1).map(([s]) => s)
  if (seqs.length === 0) return undefined
  const f = Math.min(...seqs)
  const [a, b] = [...(bySeq.get(f) as Set<string>)].sort()
  return { sled: S.sled, seq: f, records: [a as string, b as string] }
}

/** Keys under `prefix` (opens the database if a log closed it; a store reopens an open one). */
async function storedKeys(db: ReturnType<typeof memoryDb>, prefix: string): Promise<string[]> {
  await db.open()
  const out: string[] = []
  for await (const k of db.keys({ gte: prefix, lt: `${prefix.slice(0, -1)};` })) out.push(k)
  return out
}

describe('fork rule: order independence', () => {
  it('every permutation of a set of versions, on either held chain: the same fork, reads and digests', async () => {
    const CHAIN_A = [0, 0, 0, 0, 0, 0]
    const CHAIN_B = [0, 1, 0, 0, 0, 0] // holds version 1 at seq 1
    const VERSIONS: Array<[number, number]> = [
      [1, 0],
      [1, 1],
      [1, 2],
      [3, 1],
      [4, 1],
    ]
    const want = expectedFork([...CHAIN_A.map((k, s) => [s, k] as const), ...VERSIONS])
    expect(want?.seq).toBe(1)
    let reference: ReturnType<typeof shows> | undefined
    const orders = permutations(VERSIONS)
    expect(orders).toHaveLength(120)
    for (const [i, order] of orders.entries()) {
      const { log } = await memLog()
      await applyAll(log, chainUpdates(i % 2 === 0 ? CHAIN_A : CHAIN_B))
      if (i % 3 === 0) {
        // All in one flush (concurrent applies share it).
        const results = await Promise.all(order.map(([s, k]) => log.applyUpdate(versionUpdate(s, k))))
        expect(results.every((r) => r.ok)).toBe(true)
      } else
        await applyAll(
          log,
          order.map(([s, k]) => versionUpdate(s, k)),
        )
      const got = shows(log)
      expect(got.proof, `order ${JSON.stringify(order)}`).toEqual(want)
      reference ??= got
      expect(got, `order ${JSON.stringify(order)}`).toEqual(reference)
      await log.close()
    }
    expect(reference?.query.entries.map((e) => e.seq)).toEqual([0])
    expect(reference?.query.forked).toEqual({ [S.sled]: 1 })
  })

  const seed = testSeed('fork rule random', 20261204)
  it(`random version sets, held chains, orders and flush groupings agree on two logs (seed ${seed})`, async () => {
    const rand = prng(seed)
    const int = (n: number): number => Math.floor(rand() * n)
    for (let round = 0; round < 25; round++) {
      const length = 3 + int(8)
      const pool: Array<[number, number]> = []
      for (let s = 0; s < length; s++) for (let k = 0; k < 1 + int(4); k++) pool.push([s, k])
      // Each log holds a chain of versions from the pool, then receives every version of the pool.
      const chains = [0, 1].map(() =>
        Array.from({ length }, (_, s) => {
          const ks = pool.filter(([seq]) => seq === s)
          return (ks[int(ks.length)] as [number, number])[1]
        }),
      )
      const shown: Array<ReturnType<typeof shows>> = []
      for (const chain of chains) {
        const { log, db, keys } = await memLog()
        await applyAll(log, chainUpdates(chain))
        const order = [...pool].sort(() => rand() - 0.5)
        while (order.length > 0) {
          const group = order.splice(0, 1 + int(4))
          await Promise.all(group.map(([s, k]) => log.applyUpdate(versionUpdate(s, k))))
        }
        expect(log.forkProof(S.sled), `round ${round}`).toEqual(expectedFork(pool))
        // A restart changes nothing.
        await log.close()
        const again = await memLog({ db, keys })
        shown.push(shows(again.log))
      }
      expect(shown[1], `round ${round}`).toEqual(shown[0])
    }
  })
})

describe('fork rule: bounded', () => {
  it('10,000 equivocations on one sled: two logs read the same; one proof stored; status stays small', async () => {
    const N = 10_000
    const { log: x, db: dbX } = await memLog()
    const { log: y } = await memLog()
    const chain = new Array<number>(N).fill(0)
    await applyAll(x, chainUpdates(chain))
    await applyAll(y, chainUpdates(chain))
    const statusBytes = JSON.stringify(x.status()).length
    // Version 1 of every seq, in updates of 500: x gets them lowest seq first, y highest first
    // (its fork moves down once per update, 20 times).
    const chunks: Uint8Array[] = []
    for (let from = 0; from < N; from += 500)
      chunks.push(
        encodeRuns([
          runOf(
            S,
            from,
            Array.from({ length: 500 }, (_, i) => version(from + i, 1)),
          ),
        ]),
      )
    await applyAll(x, chunks)
    await applyAll(y, [...chunks].reverse())
    // A few third versions, to both.
    await applyAll(x, [versionUpdate(0, 2), versionUpdate(5000, 2)])
    await applyAll(y, [versionUpdate(5000, 2), versionUpdate(0, 2)])
    expect(shows(x)).toEqual(shows(y))
    expect(x.forkProof(S.sled)).toEqual(
      expectedFork([
        [0, 0],
        [0, 1],
        [0, 2],
      ]),
    )
    for (const log of [x, y]) {
      expect(log.status().forks).toMatchObject({ sleds: 1, equivocations: N + 2, withheld: N })
      expect(log.query({ sled: S.sled }).entries).toEqual([])
      // Counts only: the status is as small as before the 10,000 equivocations (ids and counts).
      expect(JSON.stringify(log.status()).length).toBeLessThan(statusBytes + 600)
    }
    // x saw seq 0 first: every later one was past its fork.
    expect(x.status().forks.ignored).toBe(N)
    await x.close()
    expect(await storedKeys(dbX, 'f:')).toEqual([forkKey(S.sled)])
    expect(await storedKeys(dbX, 'e:')).toEqual([])
  })
})

describe('fork rule: replicas converge', () => {
  /** `x` holds the chain; `y` the same chain and versions 1 at seqs 4 and 7: forked at 4. */
  async function pair(length = 10): Promise<{ x: SledLog; y: SledLog }> {
    const { log: x } = await memLog()
    const { log: y } = await memLog()
    const chain = new Array<number>(length).fill(0)
    await applyAll(x, chainUpdates(chain))
    await applyAll(y, chainUpdates(chain))
    await applyAll(y, [versionUpdate(7, 1), versionUpdate(4, 1)])
    expect(y.forkProof(S.sled)?.seq).toBe(4)
    return { x, y }
  }

  it('a log that never saw the other versions (same length) gets the fork through the digest refetch', async () => {
    const { x, y } = await pair()
    // Equal state vectors, different digests: the answer to a plain step 1 carries nothing.
    expect(x.updatesSince(new Map([[clientOf(S), 10]]), 1 << 20)).toEqual([])
    expect(shows(x).digest?.hash).not.toEqual(shows(y).digest?.hash)
    const rounds = await syncPair(x, y)
    expect(rounds).toBeLessThanOrEqual(2)
    expect(shows(x)).toEqual(shows(y))
    expect(x.forkProof(S.sled)).toEqual(
      expectedFork([
        [4, 0],
        [4, 1],
      ]),
    )
  })

  it('a log behind the fork gets it in the answer to its step 1, after the runs', async () => {
    const { y } = await pair()
    const { log: x } = await memLog()
    await applyAll(x, chainUpdates([0, 0, 0]))
    const answer = y.updatesSince(new Map([[clientOf(S), 3]]), 1 << 20)
    // One chunk of runs (seqs 3..9), then the two proof records at seq 4, one update each.
    expect(answer).toHaveLength(3)
    const proof = y.forkProof(S.sled) as Fork
    expect(answer.slice(1)).toEqual(proof.records.map((r) => encodeRuns([runOf(S, 4, [r])])))
    await applyAll(x, answer)
    expect(shows(x)).toEqual(shows(y))
    // A peer that already holds seq 4 is not sent the proof: the digests settle that.
    expect(y.updatesSince(new Map([[clientOf(S), 5]]), 1 << 20)).toHaveLength(1)
  })

  it('a proof record arriving before the log holds its seq (UPDATE_GAP) converges once the range comes', async () => {
    const { y } = await pair()
    const { log: x } = await memLog()
    await applyAll(x, chainUpdates([0, 0, 0]))
    const r = await x.applyUpdate(versionUpdate(4, 1), 'relay')
    expect(r).toMatchObject({ ok: false, code: 'UPDATE_GAP' })
    expect(x.missingRange(S.sled)).toEqual([3, 4])
    await syncPair(x, y)
    expect(shows(x)).toEqual(shows(y))
    expect(x.missingRange(S.sled)).toBeNull()
  })

  it('a proof record arriving as the next append is held unforked until a sync brings the fork', async () => {
    const { y } = await pair()
    const { log: x } = await memLog()
    await applyAll(x, chainUpdates([0, 0, 0, 0]))
    // A relay of one proof record at seq 4 = x's head: a plain append for x.
    const proof = y.forkProof(S.sled) as Fork
    const other = proof.records.find((r) => r !== version(4, 0)) as string
    expect(await x.applyUpdate(encodeRuns([runOf(S, 4, [other])]))).toMatchObject({ ok: true, added: 1 })
    expect(x.forkProof(S.sled)).toBeUndefined()
    await syncPair(x, y)
    expect(shows(x)).toEqual(shows(y))
  })

  it('a log holding a version smaller than both of the proof: both end on the two smallest of all', async () => {
    // Versions 2..9 at seq 4: x holds the smallest of them; y saw versions 0 and 1 and holds 0.
    const ks = [2, 3, 4, 5, 6, 7, 8, 9].sort((a, b) => (version(4, a) < version(4, b) ? -1 : 1))
    const smallest = ks[0] as number
    const { log: x } = await memLog()
    const { log: y } = await memLog()
    const chainX = [0, 0, 0, 0, smallest, 0, 0, 0, 0, 0]
    await applyAll(x, chainUpdates(chainX))
    await applyAll(y, chainUpdates(new Array<number>(10).fill(0)))
    await applyAll(y, [versionUpdate(4, 1)])
    await syncPair(x, y)
    expect(shows(x)).toEqual(shows(y))
    expect(x.forkProof(S.sled)).toEqual(
      expectedFork([
        [4, 0],
        [4, 1],
        [4, smallest],
      ]),
    )
  })

  it('serves each fork seq and proof from the digest byte for byte as PROTOCOL.md §8.4 defines it', async () => {
    const { y } = await pair()
    const proof = y.forkProof(S.sled) as Fork
    const base = createHash('sha256')
    for (let s = 0; s < 4; s++) base.update(version(s, 0)).update('\n')
    const proofHash = createHash('sha256').update(`4\n${proof.records[0]}\n${proof.records[1]}\n`).digest()
    const want = createHash('sha256').update(base.digest()).update(proofHash).digest()
    expect(shows(y).digest).toEqual({ client: clientOf(S), length: 10, hash: new Uint8Array(want) })
    // Not forked: the hash of every record, as before.
    const { log: x } = await memLog()
    await applyAll(x, chainUpdates([0, 0, 0]))
    const plain = createHash('sha256')
    for (let s = 0; s < 3; s++) plain.update(version(s, 0)).update('\n')
    expect(shows(x).digest?.hash).toEqual(new Uint8Array(plain.digest()))
  })
})

describe('fork rule: storage', () => {
  it('keeps the fork across restarts in one self-verifying key; a damaged one is counted, not loaded', async () => {
    const { log, db, keys } = await memLog()
    await applyAll(log, chainUpdates([0, 0, 0, 0]))
    await applyAll(log, [versionUpdate(2, 1), versionUpdate(3, 1), versionUpdate(2, 2)])
    const before = shows(log)
    await log.close()
    expect(await storedKeys(db, 'f:')).toEqual([forkKey(S.sled)])
    const again = await memLog({ db, keys })
    expect(shows(again.log)).toEqual(before)
    await again.log.close()
    // One changed character in a proof record: its signature no longer verifies.
    await db.open()
    const raw = JSON.parse(Buffer.from((await db.get(forkKey(S.sled))) as Uint8Array).toString('utf8'))
    raw.records[1] = raw.records[1].replace('"v"', '"w"')
    await db.put(forkKey(S.sled), Buffer.from(JSON.stringify(raw)))
    const damaged = await memLog({ db, keys })
    expect(damaged.log.status().rejected.byCode).toEqual({ STORE_CORRUPT: 1 })
    expect(damaged.log.forkProof(S.sled)).toBeUndefined()
  })

  it('migrates evidence of the earlier layout (a key per pair) into one proof per sled, and drops it', async () => {
    const db = memoryDb()
    const keys = testKeys(900)
    const first = await memLog({ db, keys })
    await applyAll(first.log, chainUpdates([0, 0, 0, 0, 0, 0]))
    await first.log.close()
    await db.open()
    const pair = (seq: number, a: number, b: number) => ({
      sled: S.sled,
      seq,
      records: [version(seq, a), version(seq, b)].sort(),
    })
    const legacy = [pair(4, 0, 1), pair(4, 0, 2), pair(4, 1, 2), pair(2, 0, 3), pair(2, 1, 3)]
    const put = (key: string, value: string) => db.put(key, Buffer.from(value))
    for (const [i, e] of legacy.entries())
      await put(`e:${S.sled}:${e.seq.toString(16).padStart(16, '0')}:${i}`, JSON.stringify(e))
    await put(`e:${S.sled}:0000000000000001:bad`, '{not json')
    const forged = {
      ...pair(1, 0, 1),
      records: [version(1, 0), `${version(1, 1).slice(0, 10)}A${version(1, 1).slice(11)}`],
    }
    await put(`e:${S.sled}:0000000000000001:forged`, JSON.stringify(forged))
    // Read-only (inspection tools): folded in memory, nothing written.
    const readOnly = await memLog({ db, keys, quarantineOnOpen: false })
    const want = expectedFork([
      [2, 0],
      [2, 1],
      [2, 3],
    ])
    expect(readOnly.log.forkProof(S.sled)).toEqual(want)
    await readOnly.log.close()
    expect(await storedKeys(db, 'e:')).toHaveLength(7)
    expect(await storedKeys(db, 'f:')).toEqual([])
    // A node: folded, written as one key, the old keys removed.
    const node = await memLog({ db, keys })
    expect(node.log.forkProof(S.sled)).toEqual(want)
    expect(node.log.status().rejected.byCode).toEqual({ STORE_CORRUPT: 2 })
    expect(node.log.query({ sled: S.sled }).entries.map((e) => e.seq)).toEqual([0, 1])
    await node.log.close()
    expect(await storedKeys(db, 'e:')).toEqual([])
    expect(await storedKeys(db, 'f:')).toEqual([forkKey(S.sled)])
    const later = await memLog({ db, keys })
    expect(later.log.forkProof(S.sled)).toEqual(want)
    expect(later.log.status().rejected.total).toBe(0)
  })
})

describe('fork rule: readers', () => {
  it('durable consumers read below the fork; an ack of an entry served before it is taken and ignored', async () => {
    const { log } = await memLog()
    await applyAll(log, chainUpdates([0, 0, 0, 0, 0]))
    const consumer = new DurableConsumer(log, 'c')
    await consumer.open()
    expect(consumer.read().entries.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4])
    await consumer.ack(S.sled, 0)
    await applyAll(log, [versionUpdate(2, 1)])
    expect(consumer.read().entries.map((e) => e.seq)).toEqual([1])
    // Seq 3 was delivered before the fork was known: acknowledging it is no error and moves nothing.
    await consumer.ack(S.sled, 3)
    await consumer.ack(S.sled, 1)
    expect(consumer.cursor()).toEqual({ [S.sled]: 1 })
    await expect(consumer.ack(S.sled, 5)).rejects.toMatchObject({ code: 'ENTRY_INVALID' })
    expect(log.heads()).toEqual({ [S.sled]: 1 })
    await consumer.close()
  })
})

describe('fork rule: this node', () => {
  it("refuses the node's own appends with SLED_FORKED once its sled is forked", async () => {
    const keys = testKeys(950)
    const { log } = await memLog({ keys })
    await log.appendBatch([
      { type: 'a', payload: 0 },
      { type: 'a', payload: 1 },
    ])
    // The same key signed another seq 1 elsewhere (a restored backup, a lost disk).
    await applyAll(log, [encodeRuns([runOf(keys, 1, [version(1, 5, keys)])])])
    expect(log.status().forks).toMatchObject({ sleds: 1, own: 1 })
    await expect(log.append({ type: 'a', payload: 2 })).rejects.toMatchObject({
      code: 'SLED_FORKED',
      message: expect.stringMatching(/seq 1.*key succession/),
      details: { seq: 1 },
    })
    await expect(log.appendGap(0, 0)).rejects.toMatchObject({ code: 'SLED_FORKED' })
    expect(log.held(keys.sled)).toBe(2)
    expect(log.query({ sled: keys.sled }).entries.map((e) => e.seq)).toEqual([0])
  })

  it('pages forks in sled order and fetches one proof by sled', async () => {
    const { log } = await memLog()
    const sleds = [1, 2, 3, 4, 5].map((n) => testKeys(n))
    for (const k of sleds) {
      await applyAll(log, chainUpdates([0, 0, 0], k))
      await applyAll(log, [versionUpdate(k === sleds[0] ? 0 : 2, 1, k)])
    }
    const sorted = sleds.map((k) => k.sled).sort() as [SledId, SledId, SledId, SledId, SledId]
    const first = log.forks({ limit: 2 })
    expect(first.forks.map((f) => f.sled)).toEqual(sorted.slice(0, 2))
    const second = log.forks({ after: first.next as SledId, limit: 2 })
    expect(second.forks.map((f) => f.sled)).toEqual(sorted.slice(2, 4))
    const last = log.forks({ after: second.next as SledId, limit: 2 })
    expect(last).toEqual({ forks: [{ sled: sorted[4], seq: expect.any(Number) }], next: null })
    expect(log.forks({ after: sorted[4] })).toEqual({ forks: [], next: null })
    expect(log.forkProof(testKeys(1).sled)?.seq).toBe(0)
    expect(log.forkProof(testKeys(77).sled)).toBeUndefined()
    expect(() => log.forks({ limit: 0 })).toThrow(expect.objectContaining({ code: 'ENTRY_INVALID' }))
    expect(() => log.forks({ after: 'zz' as SledId })).toThrow(expect.objectContaining({ code: 'ENTRY_INVALID' }))
    expect(log.status().forks).toMatchObject({ sleds: 5, first: log.forks({ limit: 5 }).forks })
  })
})
