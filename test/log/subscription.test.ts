import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { Subscription, type SubscriptionMessage } from '../../src/log/subscription.js'
import { cloneIdentity, syncInto, testLog } from '../helpers/logs.js'
import { prng, testSeed } from '../helpers/seed.js'

const ev = (i: number) => ({ type: 't', payload: i })

/** Consumes until `stop` says so (the subscription stays open); returns every message. */
async function collect(
  sub: Subscription,
  stop: (msgs: SubscriptionMessage[]) => boolean,
): Promise<SubscriptionMessage[]> {
  const msgs: SubscriptionMessage[] = []
  for (;;) {
    const r = await sub.next()
    if (r.done === true) return msgs
    msgs.push(r.value)
    if (stop(msgs)) return msgs
  }
}

function seqsBySled(msgs: readonly SubscriptionMessage[]): Map<SledId, number[]> {
  const out = new Map<SledId, number[]>()
  for (const m of msgs) {
    if (m.type !== 'entry') continue
    const list = out.get(m.entry.sled) ?? []
    list.push(m.entry.seq)
    out.set(m.entry.sled, list)
  }
  return out
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i)

describe('Subscription', () => {
  it('delivers history, then live, with no gap or duplicate at the hand-off under concurrent appends', async () => {
    const seed = testSeed('subscription-handoff')
    const rand = prng(seed)
    const { log } = await testLog()
    await log.appendBatch(range(300).map(ev))
    const sub = new Subscription(log, { from: 'start', bufferSize: 64 }).start()
    const batches = range(40).map(() => 1 + Math.floor(rand() * 10))
    const total = 300 + batches.reduce((a, b) => a + b, 0)
    // Keep appending while the subscriber reads history and switches to live.
    const writer = (async () => {
      for (const n of batches) {
        await log.appendBatch(range(n).map(ev))
        if (rand() < 0.5) await new Promise((r) => setImmediate(r))
      }
    })()
    const msgs = await collect(sub, (m) => m.filter((x) => x.type === 'entry').length === total)
    await writer
    expect(seqsBySled(msgs).get(log.sled)).toEqual(range(log.length(log.sled)))
    const liveAt = msgs.findIndex((m) => m.type === 'live')
    expect(liveAt).toBeGreaterThan(0)
    expect(msgs.filter((m) => m.type === 'live')).toHaveLength(1)
    expect(msgs.slice(liveAt).some((m) => m.type === 'entry')).toBe(true)
  })

  it('starts after a cursor or at now', async () => {
    const { log } = await testLog()
    await log.appendBatch(range(10).map(ev))
    const fromCursor = new Subscription(log, { from: { [log.sled]: 6 } }).start()
    const now = new Subscription(log, { from: 'now' }).start()
    await log.append(ev(10))
    const a = await collect(fromCursor, (m) => m.filter((x) => x.type === 'entry').length === 4)
    const b = await collect(now, (m) => m.filter((x) => x.type === 'entry').length === 1)
    expect(seqsBySled(a).get(log.sled)).toEqual([7, 8, 9, 10])
    expect(seqsBySled(b).get(log.sled)).toEqual([10])
    expect(b[0]).toEqual({ type: 'live' })
  })

  it('tells a lagging subscriber exactly what it missed and resyncs it from the stored log', async () => {
    const { log } = await testLog()
    const sub = new Subscription(log, { from: 'now', bufferSize: 20 }).start()
    expect(await sub.next()).toEqual({ done: false, value: { type: 'live' } })
    // The subscriber does not read while 100 entries arrive: its live buffer overflows.
    await log.appendBatch(range(100).map(ev))
    expect(sub.lagEvents).toBe(1)
    const msgs = await collect(
      sub,
      (m) => m.filter((x) => x.type === 'entry').length === 100 && m.at(-1)?.type === 'entry',
    )
    const lagged = msgs.find((m) => m.type === 'lagged')
    expect(lagged).toEqual({ type: 'lagged', missed: { [log.sled]: [0, 99] } })
    expect(msgs[0]?.type).toBe('lagged')
    expect(seqsBySled(msgs).get(log.sled)).toEqual(range(100))
    // And it goes live again.
    const next = await collect(sub, (m) => m.some((x) => x.type === 'live'))
    expect(next.some((m) => m.type === 'live')).toBe(true)
    sub.stop()
  })

  it('delivers replicated entries of other sleds and reports holes and their filling', async () => {
    const { log } = await testLog()
    const { log: peer } = await testLog()
    const sub = new Subscription(log, { from: 'start' }).start()
    expect((await sub.next()).value).toEqual({ type: 'live' })
    await peer.appendBatch(range(5).map(ev))
    log.noteRemoteHead(peer.sled, 4)
    expect((await sub.next()).value).toEqual({ type: 'hole', sled: peer.sled, from: 0, to: 4 })
    await syncInto(peer, log)
    const msgs = await collect(sub, (m) => m.some((x) => x.type === 'hole-filled'))
    expect(seqsBySled(msgs).get(peer.sled)).toEqual(range(5))
    expect(msgs.at(-1)).toEqual({ type: 'hole-filled', sled: peer.sled, upTo: 4 })
  })

  it('filters by sled and stops cleanly', async () => {
    const { log } = await testLog()
    const { log: peer } = await testLog()
    await peer.appendBatch(range(3).map(ev))
    await syncInto(peer, log)
    await log.appendBatch(range(2).map(ev))
    const sub = new Subscription(log, { sleds: [peer.sled] }).start()
    const msgs = await collect(sub, (m) => m.some((x) => x.type === 'live'))
    expect([...seqsBySled(msgs).keys()]).toEqual([peer.sled])
    const pending = sub.next()
    sub.stop()
    expect(await pending).toEqual({ done: true, value: undefined })
  })

  it('announces holes known before it started, and their filling', async () => {
    const { log } = await testLog()
    const { log: peer } = await testLog()
    await peer.appendBatch(range(5).map(ev))
    log.noteRemoteHead(peer.sled, 4)
    const sub = new Subscription(log, { from: 'start' }).start()
    const first = await collect(sub, (m) => m.some((x) => x.type === 'live'))
    expect(first).toEqual([{ type: 'hole', sled: peer.sled, from: 0, to: 4 }, { type: 'live' }])
    await syncInto(peer, log)
    const msgs = await collect(sub, (m) => m.some((x) => x.type === 'hole-filled'))
    expect(seqsBySled(msgs).get(peer.sled)).toEqual(range(5))
    expect(msgs.at(-1)).toEqual({ type: 'hole-filled', sled: peer.sled, upTo: 4 })
    // A subscription filtered to other sleds is not told.
    const other = new Subscription(log, { sleds: [log.sled] }).start()
    expect((await other.next()).value).toEqual({ type: 'live' })
    sub.stop()
    other.stop()
  })

  it('withholds a forked sled from its fork seq on, live and stored, and says so', async () => {
    const { log: a, dir } = await testLog()
    const { log: twin } = await testLog(await cloneIdentity(dir))
    await a.append({ type: 'shared', payload: 0 })
    await syncInto(a, twin)
    const { log } = await testLog()
    await syncInto(a, log)
    await a.append({ type: 'fork', payload: 'a' })
    await twin.appendBatch([
      { type: 'fork', payload: 'twin' },
      { type: 'after', payload: 2 },
    ])
    const live = new Subscription(log, { from: 'now' }).start()
    expect((await live.next()).value).toEqual({ type: 'live' })
    // A subscriber that does not read: the stored seq 0, then live (nothing new yet).
    const idle = new Subscription(log, { from: 'start', sleds: [a.sled] }).start()
    // Both versions of seq 1 arrive in one flush: one is applied, the other is an equivocation.
    const results = await Promise.all([
      log.applyUpdate(twin.updatesSince(new Map([[a.clientId, 1]]), 1 << 20)[0] as Uint8Array),
      log.applyUpdate(a.updatesSince(new Map([[a.clientId, 1]]), 1 << 20)[0] as Uint8Array),
    ])
    expect(results.map((r) => r.ok && r.equivocations)).toEqual([0, 1])
    expect(log.forkProof(a.sled)?.seq).toBe(1)
    // The commit that carried seqs 1 and 2 delivers nothing of them: the fork came first.
    const own = await log.append({ type: 'mine', payload: null })
    expect(await collect(live, (m) => m.some((x) => x.type === 'entry'))).toEqual([
      { type: 'forked', sled: a.sled, seq: 1 },
      { type: 'entry', entry: own },
    ])
    const seq0 = log.get(a.sled, 0)
    expect(await collect(idle, (m) => m.some((x) => x.type === 'forked'))).toEqual([
      { type: 'entry', entry: seq0 },
      { type: 'live' },
      { type: 'forked', sled: a.sled, seq: 1 },
    ])
    // A new subscription hears of the fork first, then reads below it.
    const late = new Subscription(log, { from: 'start' }).start()
    const msgs = await collect(late, (m) => m.some((x) => x.type === 'live'))
    expect(msgs[0]).toEqual({ type: 'forked', sled: a.sled, seq: 1 })
    expect(seqsBySled(msgs).get(a.sled)).toEqual([0])
    for (const sub of [live, idle, late]) sub.stop()
  })

  it('takes back queued entries at and past a fork the subscriber has not read yet', async () => {
    const { log: a, dir } = await testLog()
    await a.append({ type: 'shared', payload: 0 })
    const { log } = await testLog()
    await syncInto(a, log)
    await a.append({ type: 'next', payload: 1 })
    // A subscriber that reads nothing until the end.
    const sub = new Subscription(log, { from: 'now' }).start()
    const own1 = await log.append(ev(1))
    await syncInto(a, log) // a's seq 1: queued for the subscriber, unread
    // Another version of seq 0 (a second copy of the key): the sled is forked at 0.
    const { log: third } = await testLog(await cloneIdentity(dir))
    await third.append({ type: 'other', payload: 'zero' })
    await log.applyUpdate(third.updatesSince(new Map(), 1 << 20)[0] as Uint8Array)
    expect(log.forkProof(a.sled)?.seq).toBe(0)
    const own2 = await log.append(ev(2))
    expect(await collect(sub, (m) => m.some((x) => x.type === 'entry' && x.entry.seq === own2.seq))).toEqual([
      { type: 'live' },
      { type: 'entry', entry: own1 },
      { type: 'forked', sled: a.sled, seq: 0 },
      { type: 'entry', entry: own2 },
    ])
    sub.stop()
  })
})

describe('Subscription read-ahead', () => {
  it('reads at most readAhead stored entries ahead of the subscriber, and still delivers all in order', async () => {
    const { log } = await testLog()
    await log.appendBatch(range(300).map(ev))
    const reads: number[] = []
    const query = log.query.bind(log)
    log.query = (q) => {
      const r = query(q)
      reads.push(r.entries.length)
      return r
    }
    const sub = new Subscription(log, { from: 'start', bufferSize: 1000, readAhead: 8 }).start()
    const msgs = await collect(sub, (m) => m.at(-1)?.type === 'live')
    expect(seqsBySled(msgs).get(log.sled)).toEqual(range(300))
    // No read fetched more than the read-ahead (a default subscription reads 300 at once).
    expect(Math.max(...reads)).toBeLessThanOrEqual(8)
    // Live entries still queue up to bufferSize before the subscriber counts as lagging.
    await log.appendBatch(range(50).map(ev))
    const live = await collect(sub, (m) => m.filter((x) => x.type === 'entry').length === 50)
    expect(live.some((m) => m.type === 'lagged')).toBe(false)
    sub.stop()
  })
})
