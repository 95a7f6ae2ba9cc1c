import { MemoryLevel } from 'memory-level'
import { randomBytes } from 'node:crypto'
import { keyPairFromSeed } from '../../src/core/signing.js'
import { expect, it } from 'vitest'

import { SledLog } from '../../src/log/sled-log.js'
import { deriveMacKey, LevelStore } from '../../src/store/level-store.js'
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
