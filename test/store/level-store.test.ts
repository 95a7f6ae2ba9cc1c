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

it('remac re-seals what the old key sealed, leaves the rest, and can run twice', async () => {
  const oldKeys = keyPairFromSeed(new Uint8Array(randomBytes(32)))
  const newKeys = keyPairFromSeed(new Uint8Array(randomBytes(32)))
  const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
  const before = new LevelStore({ db, macKey: deriveMacKey(oldKeys.seed) })
  await before.open()
  await before.commit({ updates: [new Uint8Array([0, 0]), new Uint8Array([0, 0])] })
  await before.appendSnapshot([new Uint8Array([0, 0])])
  await before.settleLoad(['u:0000000000000001'], []) // one update moved to quarantine
  await db.put('u:00000000000000ff', new Uint8Array(20)) // damaged: verifies under neither key
  await before.close()
  const trusted = async (macKey: Uint8Array): Promise<Record<string, boolean>> => {
    const s = new LevelStore({ db, macKey })
    await s.open()
    const out: Record<string, boolean> = {}
    for await (const u of s.updates()) out[u.key.replace(/@.*/, '')] = u.trusted
    await s.close()
    return out
  }
  expect(await trusted(deriveMacKey(newKeys.seed))).toEqual({
    's:00000000': false,
    'u:0000000000000000': false,
    'u:00000000000000ff': false,
    'q:u:0000000000000001': false,
  })
  const after = new LevelStore({ db, macKey: deriveMacKey(newKeys.seed) })
  await after.open()
  expect(await after.remac(deriveMacKey(oldKeys.seed))).toBe(3)
  expect(await after.remac(deriveMacKey(oldKeys.seed))).toBe(0)
  await after.close()
  expect(await trusted(deriveMacKey(newKeys.seed))).toEqual({
    's:00000000': true,
    'u:0000000000000000': true,
    'u:00000000000000ff': false,
    'q:u:0000000000000001': true,
  })
})
