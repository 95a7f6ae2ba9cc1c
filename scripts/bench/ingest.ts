/**
 * Bench group `ingest`: the bounded bus and its writer (throughput, behaviour under 10x
 * overload) and subscription fan-out, on a real LevelDB.
 */
import { IngestWriter } from '../../src/ingest/writer.js'
import { openLog } from '../../src/log/open-log.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { Subscription } from '../../src/log/subscription.js'
import { makeEvent, now, type BenchContext, type BenchGroup } from './harness.js'

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Checks that every lid below `upTo` is in exactly one entry or sentinel; returns counts. */
function account(log: SledLog, upTo: number): { events: number; dropped: number; sentinels: number; ok: boolean } {
  const seen = new Uint8Array(upTo)
  let events = 0
  let dropped = 0
  let sentinels = 0
  let ok = true
  const mark = (lid: number): void => {
    if (lid >= upTo || seen[lid] === 1) ok = false
    else seen[lid] = 1
  }
  let page = log.query({ sled: log.sled, limit: 10_000 })
  for (;;) {
    for (const e of page.entries) {
      if (e.kind === 'gap') {
        sentinels++
        dropped += e.to - e.from + 1
        for (let l = e.from; l <= e.to; l++) mark(l)
      } else if (e.kind === 'event' && e.lid !== undefined) {
        events++
        mark(e.lid)
      }
    }
    if (page.next === null) break
    page = log.query({ sled: log.sled, limit: 10_000, after: page.next })
  }
  return { events, dropped, sentinels, ok: ok && seen.every((v) => v === 1) }
}

async function throughput(ctx: BenchContext): Promise<number> {
  const n = ctx.quick ? 10_000 : 200_000
  const log = await openLog(await ctx.tempDir('ingest'))
  const writer = new IngestWriter({ log, capacity: 10_000, batchSize: 500 })
  await writer.start()
  const t0 = now()
  for (let i = 0; i < n; i++) {
    // A well-behaved producer: never more than the bus holds, so nothing is dropped.
    while (writer.bus.stats().depth >= 9_000) await yieldToLoop()
    writer.bus.publish(makeEvent(i))
  }
  await writer.stop()
  const ms = now() - t0
  const rate = (n / ms) * 1000
  ctx.record('throughput', 'events appended (signed, durable)', rate, 'events/s', `${n} events, batches of 500`)
  ctx.record('throughput', 'dropped', writer.stats().dropped, 'events')
  await log.close()
  return rate
}

async function overload(ctx: BenchContext, sustainable: number): Promise<void> {
  const seconds = ctx.quick ? 1 : 10
  const target = sustainable * 10
  const log = await openLog(await ctx.tempDir('ingest-overload'))
  const writer = new IngestWriter({ log, capacity: 10_000, batchSize: 500 })
  await writer.start()
  const t0 = now()
  let published = 0
  // Publish in 10 ms ticks at ten times the sustainable rate.
  while (now() - t0 < seconds * 1000) {
    const due = Math.floor(((now() - t0) / 1000) * target)
    while (published < due) writer.bus.publish(makeEvent(published++))
    await new Promise((r) => setTimeout(r, 10))
  }
  // The offered rate is over the publishing window only, not the drain in stop().
  const publishMs = now() - t0
  await writer.stop()
  const st = writer.stats()
  const acc = account(log, published)
  ctx.record(
    'overload-10x',
    'offered rate',
    (published / publishMs) * 1000,
    'events/s',
    `${seconds} s at 10x the sustainable rate`,
  )
  ctx.record('overload-10x', 'appended', acc.events, 'events')
  ctx.record('overload-10x', 'dropped (inside sentinels)', acc.dropped, 'events')
  ctx.record('overload-10x', 'dropped share', (acc.dropped / published) * 100, '%')
  ctx.record('overload-10x', 'gap sentinels', acc.sentinels, 'entries')
  ctx.record(
    'overload-10x',
    'every lid in exactly one entry or sentinel',
    acc.ok ? 1 : 0,
    'bool',
    `${published} lids; writer saw ${st.droppedRanges} dropped ranges`,
  )
  await log.close()
}

async function fanOut(ctx: BenchContext): Promise<void> {
  const subscribers = 100
  const n = ctx.quick ? 2_000 : 20_000
  const log = await openLog(await ctx.tempDir('fanout'))
  const subs = Array.from({ length: subscribers }, () =>
    new Subscription(log, { from: 'now', bufferSize: 1000 }).start(),
  )
  let lagged = 0
  const t0 = now()
  const consumers = subs.map(async (sub) => {
    let got = 0
    while (got < n) {
      const r = await sub.next()
      if (r.done === true) break
      if (r.value.type === 'entry') got++
      else if (r.value.type === 'lagged') lagged++
    }
    sub.stop()
    return got
  })
  for (let i = 0; i < n; i += 100)
    await log.appendBatch(Array.from({ length: Math.min(100, n - i) }, (_, k) => makeEvent(i + k)))
  const appendedMs = now() - t0
  const got = await Promise.all(consumers)
  const ms = now() - t0
  ctx.record(
    'fan-out-100',
    'entries delivered to 100 subscribers',
    (got.reduce((a, b) => a + b, 0) / ms) * 1000,
    'entries/s',
    `${n} entries each`,
  )
  ctx.record('fan-out-100', 'append rate with 100 live subscribers', (n / appendedMs) * 1000, 'entries/s')
  ctx.record('fan-out-100', 'time until the last subscriber has all', ms, 'ms')
  ctx.record('fan-out-100', 'lagged notices (resynced from the log)', lagged, 'count')
  await log.close()
}

let sustainable = 0

/** The ingest and subscription group. */
export const ingestGroup: BenchGroup = {
  name: 'ingest',
  description: 'ingest bus + writer (throughput, 10x overload with gap sentinels) and subscription fan-out',
  scenarios: [
    { name: 'throughput', run: async (ctx) => void (sustainable = await throughput(ctx)) },
    { name: 'overload-10x', run: async (ctx) => overload(ctx, sustainable > 0 ? sustainable : await throughput(ctx)) },
    { name: 'fan-out-100', run: fanOut },
  ],
}
