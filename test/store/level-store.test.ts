import { MemoryLevel } from 'memory-level'
import { randomBytes } from 'node:crypto'
import type { Fork } from '../../src/core/fork.js'
import type { SledId } from '../../src/core/ids.js'
import { keyPairFromSeed } from '../../src/core/signing.js'
import { expect, it } from 'vitest'

import { SledLog } from '../../src/log/sled-log.js'
import { deriveMacKey, forkKey, LevelStore } from '../../src/store/level-store.js'
it('runs on any abstract-level database: memory-level keeps the log across close and reopen', async () => {
  const keys = keyPairFromSeed(new Uint8Array(randomBytes(32)))
  const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
  const log = new SledLog({ keys, store: new LevelStore({ db, macKey: deriveMacKey(keys.seed) }) })
  await log.open()
  await log.append({ type: 't', payload: 1 })
  await log.close()
  const log2 = new SledLog({ keys, store: new LevelStore({ db, macKey: deriveMacKey(keys.seed) }) })
  await log2.open()
  expect(log2.length(keys.sled)).toBe(1)
  expect(log2.storeCreated).toBe(false)
  await log2.close()
})

it('keeps one fork proof per sled under f:<sled>, replaced on change; reads, then drops, the e: layout', async () => {
  const keys = keyPairFromSeed(new Uint8Array(randomBytes(32)))
  const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
  const store = new LevelStore({ db, macKey: deriveMacKey(keys.seed) })
  await store.open()
  const [a, b] = ['a'.repeat(64), 'b'.repeat(64)] as [SledId, SledId]
  const fork = (sled: SledId, seq: number, x: string, y: string): Fork => ({ sled, seq, records: [x, y] })
  await store.commit({ updates: [], forks: [fork(a, 5, 'p', 'q'), fork(b, 1, 'r', 's')] })
  await store.commit({ updates: [], forks: [fork(a, 2, 'm', 'n')] })
  expect(await store.forks()).toEqual([
    { key: forkKey(a), value: { sled: a, seq: 2, records: ['m', 'n'] } },
    { key: forkKey(b), value: { sled: b, seq: 1, records: ['r', 's'] } },
  ])
  await db.put(`e:${a}:0000000000000003:0123456789abcdef`, Buffer.from('{"sled":"x"}'))
  await db.put(`e:${a}:0000000000000003:fedcba9876543210`, Buffer.from('not json'))
  expect(await store.legacyEvidence()).toEqual([
    { key: `e:${a}:0000000000000003:0123456789abcdef`, value: { sled: 'x' } },
    { key: `e:${a}:0000000000000003:fedcba9876543210`, value: undefined },
  ])
  await store.settleForks([fork(b, 0, 't', 'u')], true)
  expect(await store.legacyEvidence()).toEqual([])
  expect((await store.forks()).map((f) => f.value)).toEqual([
    { sled: a, seq: 2, records: ['m', 'n'] },
    { sled: b, seq: 0, records: ['t', 'u'] },
  ])
  await store.close()
})
