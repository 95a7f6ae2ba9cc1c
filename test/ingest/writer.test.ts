import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '../../src/core/query.js'
import { IngestWriter } from '../../src/ingest/writer.js'
import { openLog } from '../../src/log/open-log.js'
import { ownEntries, testLog } from '../helpers/logs.js'
import { prng, testSeed } from '../helpers/seed.js'
import { tempDir } from '../helpers/tmp.js'

/** Every lid in [0, upTo) is in exactly one place: an entry's lid or one sentinel's range. */
function checkAccounting(entries: readonly StoredEntry[], upTo: number): { events: number; dropped: number } {
  const owner = new Int32Array(upTo).fill(-1)
  let events = 0
  let dropped = 0
  const claim = (lid: number, seq: number): void => {
    expect(lid, `lid ${lid} beyond published range`).toBeLessThan(upTo)
    expect(owner[lid], `lid ${lid} claimed twice (seq ${owner[lid]} and ${seq})`).toBe(-1)
    owner[lid] = seq
  }
  for (const e of entries) {
    if (e.kind === 'gap') {
      for (let l = e.from; l <= e.to; l++) claim(l, e.seq)
      dropped += e.to - e.from + 1
    } else if (e.kind === 'event' && e.lid !== undefined) {
      claim(e.lid, e.seq)
      events++
    }
  }
  const hole = owner.indexOf(-1)
  expect(hole, `lid ${hole} accounted nowhere`).toBe(-1)
  return { events, dropped }
}

describe('IngestWriter', () => {
  it('accounts for every logical id under a flooding producer (entry or exactly one sentinel)', async () => {
    const seed = testSeed('ingest-flood')
    const rand = prng(seed)
    const { log } = await testLog()
    const writer = new IngestWriter({ log, capacity: 200, batchSize: 50, flushIntervalMs: 2 })
    await writer.start()
    let published = 0
    for (let round = 0; round < 60; round++) {
      const burst = 1 + Math.floor(rand() * 800)
      for (let i = 0; i < burst; i++) {
        writer.bus.publish({ type: 'flood', payload: { round, i } })
        published++
      }
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 4)))
    }
    await writer.stop()
    const st = writer.stats()
    expect(st.dropped).toBeGreaterThan(0)
    const { events, dropped } = checkAccounting(ownEntries(log), published)
    expect(events).toBe(st.appended)
    expect(dropped).toBe(st.dropped)
    expect(events + dropped).toBe(published)
    // Entries preserve lid order: the log is in producer order.
    const lids = ownEntries(log).flatMap((e) =>
      e.kind === 'gap' ? [e.from] : e.kind !== 'event' || e.lid === undefined ? [] : [e.lid],
    )
    expect(lids).toEqual([...lids].sort((a, b) => a - b))
  })

  it('never blocks producers: publish returns at once even when the log is slow', async () => {
    const { log } = await testLog()
    const writer = new IngestWriter({ log, capacity: 10, batchSize: 5 })
    await writer.start()
    const results = Array.from({ length: 1000 }, (_, i) => writer.bus.publish({ type: 't', payload: i }))
    expect(results.filter((r) => r.queued)).toHaveLength(10)
    expect(results.every((r) => r.lid !== null)).toBe(true)
    await writer.stop()
    checkAccounting(ownEntries(log), 1000)
  })

  it('drops duplicate idempotency ids without using a lid, queued or already appended', async () => {
    const { log } = await testLog()
    const writer = new IngestWriter({ log })
    await writer.start()
    expect(writer.bus.publish({ type: 't', payload: 1, id: 'a' }).duplicate).toBe(false)
    expect(writer.bus.publish({ type: 't', payload: 2, id: 'a' })).toEqual({
      lid: null,
      queued: false,
      duplicate: true,
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(writer.bus.publish({ type: 't', payload: 3, id: 'a' }).duplicate).toBe(true)
    // A direct append of the same event returns the existing entry; one with another payload is
    // refused (an id names one event).
    const again = await log.append({ type: 't', payload: 1, id: 'a' })
    expect(again.seq).toBe(0)
    await expect(log.append({ type: 't', payload: 4, id: 'a' })).rejects.toMatchObject({ code: 'ENTRY_ID_CONFLICT' })
    await writer.stop()
    expect(ownEntries(log)).toHaveLength(1)
    expect(writer.stats().deduplicated).toBe(2)
    checkAccounting(ownEntries(log), 1)
  })

  it('records a refused event (too large) as a sentinel and keeps the rest of its batch', async () => {
    const { log } = await testLog(undefined, { limits: { maxRecordBytes: 2048 } })
    const writer = new IngestWriter({ log, batchSize: 10 })
    await writer.start()
    writer.bus.publish({ type: 't', payload: 'ok-0' })
    writer.bus.publish({ type: 't', payload: 'x'.repeat(5000) })
    writer.bus.publish({ type: 't', payload: 'ok-2' })
    await writer.stop()
    const entries = ownEntries(log)
    expect(
      entries.map((e) => (e.kind === 'gap' ? `gap ${e.from}-${e.to}` : e.kind === 'event' ? `lid ${e.lid}` : e.kind)),
    ).toEqual(['lid 0', 'gap 1-1', 'lid 2'])
    expect(writer.stats().rejected).toBe(1)
  })

  it('continues lids across a clean restart and covers lids a crash may have lost', async () => {
    const dir = await tempDir()
    let log = await openLog(dir)
    let writer = new IngestWriter({ log, reserveBlock: 1000 })
    await writer.start()
    for (let i = 0; i < 10; i++) writer.bus.publish({ type: 't', payload: i })
    await writer.stop()
    await log.close()

    log = await openLog(dir)
    writer = new IngestWriter({ log, reserveBlock: 1000 })
    await writer.start()
    // A clean stop left the exact next lid: no sentinel, lids continue.
    expect(writer.bus.stats().nextLid).toBe(10)
    expect(ownEntries(log).some((e) => e.kind === 'gap')).toBe(false)
    // "Crash": close the log under the writer without stopping it.
    for (let i = 0; i < 5; i++) writer.bus.publish({ type: 't', payload: i })
    await log.close()
    await writer.stop()

    log = await openLog(dir)
    writer = new IngestWriter({ log, reserveBlock: 1000 })
    await writer.start()
    // The crashed run reserved lids up to 1010 and wrote none of its 5: a crash could have lost
    // any published event below the reservation, so that range is recorded as one sentinel.
    expect(writer.bus.stats().nextLid).toBe(1010)
    expect(ownEntries(log).filter((e) => e.kind === 'gap')).toMatchObject([{ from: 10, to: 1009 }])
    writer.bus.publish({ type: 't', payload: 'after' })
    await writer.stop()
    const entries = ownEntries(log)
    checkAccounting(entries, writer.bus.stats().nextLid)
    await log.close()
  })

  it('restarts after a deduplicated event without reusing or double-counting a lid', async () => {
    const dir = await tempDir()
    let log = await openLog(dir)
    let writer = new IngestWriter({ log, batchSize: 3, reserveBlock: 1000 })
    await writer.start()
    writer.bus.publish({ type: 't', payload: 0 })
    writer.bus.publish({ type: 't', payload: 1, id: 'x' })
    writer.bus.publish({ type: 't', payload: 2 })
    // The same id appended directly, queued in the log before the writer's batch: the log
    // answers lid 1 with this entry, so lid 1's sentinel can only follow the batch.
    await log.append({ type: 'direct', payload: null, id: 'x' })
    await writer.stop()
    expect(
      ownEntries(log).map((e) =>
        e.kind === 'gap' ? `gap ${e.from}-${e.to}` : e.kind === 'event' ? `lid ${e.lid}` : e.kind,
      ),
    ).toEqual(['lid undefined', 'lid 0', 'lid 2', 'gap 1-1'])
    await log.close()

    log = await openLog(dir)
    writer = new IngestWriter({ log, reserveBlock: 1000 })
    await writer.start()
    expect(writer.bus.stats().nextLid).toBe(3)
    writer.bus.publish({ type: 't', payload: 3 })
    await writer.stop()
    checkAccounting(ownEntries(log), 4)
    await log.close()
  })

  it('after a crash between a batch and its dedupe sentinel, the next start records the lost lid', async () => {
    const dir = await tempDir()
    let log = await openLog(dir)
    let writer = new IngestWriter({ log, batchSize: 3, reserveBlock: 1000 })
    await writer.start()
    // "Crash" right after the batch commits: the sentinel for lid 1 is never written.
    log.onCommit((e) => {
      if (e.local) void log.close()
    })
    writer.bus.publish({ type: 't', payload: 0 })
    writer.bus.publish({ type: 't', payload: 1, id: 'x' })
    writer.bus.publish({ type: 't', payload: 2 })
    await log.append({ type: 'direct', payload: null, id: 'x' })
    await writer.stop()
    expect(writer.stats().error).not.toBeNull()
    await log.close()

    log = await openLog(dir)
    writer = new IngestWriter({ log, reserveBlock: 1000 })
    await writer.start()
    expect(ownEntries(log).filter((e) => e.kind === 'gap')).toMatchObject([
      { from: 1, to: 1 },
      { from: 3, to: 999 },
    ])
    expect(writer.bus.stats().nextLid).toBe(1000)
    await writer.stop()
    checkAccounting(ownEntries(log), 1000)
    await log.close()
  })

  it('refuses a duplicate id published after its event left the bus but before it is stored', async () => {
    const { log } = await testLog()
    const writer = new IngestWriter({ log, batchSize: 3, reserveBlock: 4 })
    await writer.start()
    writer.bus.publish({ type: 't', payload: 0 })
    writer.bus.publish({ type: 't', payload: 1 })
    writer.bus.publish({ type: 't', payload: 2, id: 'x' })
    // Let the writer take the batch; no I/O can complete during microtasks, so it is not stored.
    for (let i = 0; i < 20 && writer.bus.pending > 0; i++) await Promise.resolve()
    expect(writer.bus.pending).toBe(0)
    expect(log.hasId('x')).toBe(false)
    expect(writer.bus.publish({ type: 't', payload: 3, id: 'x' })).toEqual({
      lid: null,
      queued: false,
      duplicate: true,
    })
    await writer.stop()
    const entries = ownEntries(log)
    expect(entries.filter((e) => e.kind === 'event' && e.id === 'x')).toHaveLength(1)
    expect(entries.some((e) => e.kind === 'gap')).toBe(false)
    checkAccounting(entries, 3)
  })

  it('never hands out a lid past the persisted reservation, so a crash cannot reuse one', async () => {
    const dir = await tempDir()
    let log = await openLog(dir)
    let writer = new IngestWriter({ log, capacity: 5, reserveBlock: 10 })
    await writer.start()
    // A burst far past the reservation before the writer or the store can react.
    const first = Array.from({ length: 100 }, (_, i) => writer.bus.publish({ type: 't', payload: i }))
    const handedOut = new Set(first.flatMap((r) => (r.lid === null ? [] : [r.lid])))
    expect(handedOut.size).toBeGreaterThan(0)
    const refused = writer.bus.stats().refused
    // "Crash": the log closes under the writer.
    await log.close()
    await writer.stop()

    log = await openLog(dir)
    writer = new IngestWriter({ log, capacity: 5, reserveBlock: 10 })
    await writer.start()
    const second = Array.from({ length: 5 }, (_, i) => writer.bus.publish({ type: 't', payload: i }))
    for (const r of second) {
      expect(r.lid).not.toBeNull()
      expect(handedOut.has(r.lid as number), `lid ${r.lid} handed out before the crash`).toBe(false)
    }
    // Events past the reservation were refused (no lid), not numbered.
    expect(first.filter((r) => r.lid === null && !r.duplicate)).toHaveLength(refused)
    expect(handedOut.size + refused).toBe(100)
    await writer.stop()
    checkAccounting(ownEntries(log), writer.bus.stats().nextLid)
    await log.close()
  })

  it('extends the reservation as lids are used: a producer republishing refused events gets them all in', async () => {
    const { log } = await testLog()
    const writer = new IngestWriter({ log, capacity: 1000, reserveBlock: 16 })
    await writer.start()
    for (let i = 0; i < 200; i++) {
      let r = writer.bus.publish({ type: 't', payload: i })
      while (r.lid === null) {
        await new Promise((resolve) => setTimeout(resolve, 1))
        r = writer.bus.publish({ type: 't', payload: i })
      }
      expect(r).toEqual({ lid: i, queued: true, duplicate: false })
    }
    await writer.stop()
    const entries = ownEntries(log)
    checkAccounting(entries, 200)
    expect(entries.map((e) => (e.kind === 'event' ? e.payload : null))).toEqual(
      Array.from({ length: 200 }, (_, i) => i),
    )
  })
})
