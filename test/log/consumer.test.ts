import { describe, expect, it } from 'vitest'
import { isSledlogError } from '../../src/errors.js'
import { DurableConsumer } from '../../src/log/consumer.js'
import { openLog } from '../../src/log/open-log.js'
import { tempDir } from '../helpers/tmp.js'

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

describe('DurableConsumer', () => {
  it('resumes after its last acknowledged entry after a restart, never past an unacknowledged one', async () => {
    const dir = await tempDir()
    let log = await openLog(dir)
    await log.appendBatch(range(10).map((i) => ({ type: 't', payload: i })))
    let c = new DurableConsumer(log, 'billing')
    await c.open()
    expect(c.read(3).entries.map((e) => e.seq)).toEqual([0, 1, 2])
    await c.ack(log.sled, 0)
    await c.ack(log.sled, 1)
    // 3 and 4 acknowledged, 2 not: the cursor must stay at 1.
    await c.ack(log.sled, 3)
    await c.ack(log.sled, 4)
    expect(c.cursor()).toEqual({ [log.sled]: 1 })
    await c.close()
    await log.close()

    log = await openLog(dir)
    c = new DurableConsumer(log, 'billing')
    await c.open()
    expect(c.cursor()).toEqual({ [log.sled]: 1 })
    expect(c.read(100).entries.map((e) => e.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9])
    await c.ack(log.sled, 2)
    expect(c.cursor()).toEqual({ [log.sled]: 2 })
    expect(await DurableConsumer.list(log)).toEqual(['billing'])
    await c.close()
    await log.close()
  })

  it('subscribes from its cursor and refuses bad acks and names', async () => {
    const dir = await tempDir()
    const log = await openLog(dir)
    await log.appendBatch(range(5).map((i) => ({ type: 't', payload: i })))
    const c = new DurableConsumer(log, 'c1')
    await c.open()
    await Promise.all([c.ack(log.sled, 0), c.ack(log.sled, 1)])
    const sub = c.subscribe()
    const seqs: number[] = []
    for await (const m of sub) {
      if (m.type === 'entry') seqs.push(m.entry.seq)
      if (m.type === 'live') break
    }
    expect(seqs).toEqual([2, 3, 4])
    const bad = await c.ack(log.sled, 99).catch((e: unknown) => e)
    expect(isSledlogError(bad, 'ENTRY_INVALID')).toBe(true)
    expect(() => new DurableConsumer(log, 'no spaces')).toThrow(/consumer name/)
    await c.close()
    await log.close()
  })

  it('delete removes the stored cursor (no tombstone), refuses later acks, a new consumer starts over', async () => {
    const dir = await tempDir()
    let log = await openLog(dir)
    await log.appendBatch(range(3).map((i) => ({ type: 't', payload: i })))
    const c = new DurableConsumer(log, 'gone')
    await c.open()
    await Promise.all([c.ack(log.sled, 0), c.ack(log.sled, 1)])
    expect(await DurableConsumer.exists(log, 'gone')).toBe(true)
    await c.delete()
    expect(await log.readMeta('consumer:gone')).toBeUndefined()
    expect(await DurableConsumer.list(log)).toEqual([])
    expect(isSledlogError(await c.ack(log.sled, 2).catch((e: unknown) => e), 'CONSUMER_NOT_FOUND')).toBe(true)
    // An earlier version's tombstone reads as absent.
    await log.writeMeta({ 'consumer:old': 'null' })
    expect(await DurableConsumer.exists(log, 'old')).toBe(false)
    await log.close()
    log = await openLog(dir)
    const again = new DurableConsumer(log, 'gone')
    await again.open()
    expect(again.cursor()).toEqual({})
    await log.close()
  })
})
