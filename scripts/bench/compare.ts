/**
 * Group "compare": sledlog side by side with what users would pick instead, same run, same
 * machine, same entries (scripts/bench/harness.ts makeEvent: ~250-byte JSON payloads).
 *
 * - hypercore (npm): a signed Merkle-tree append-only log per writer. Appends one at a time and
 *   in batches, and replication between two instances over in-memory streams
 *   (`core.replicate(true)` piped to `core2.replicate(false)`), live and as a catch-up. What
 *   hypercore signs: the Merkle tree root, once per append call (so once per batch); a reader
 *   verifies that signature once per length upgrade and each block's Merkle proof (BLAKE2b
 *   hashes), not one Ed25519 signature per entry as sledlog does.
 * - sledlog, the same operations in this process: SledLog append one at a time and
 *   appendBatch, and two in-process SledNodes replicating over real websockets on loopback.
 * - plain Yjs + y-websocket (scripts/bench/yjs-ws-child.ts, fresh process, unpatched yjs): no
 *   signing, no guard, no persistence; live replication to two clients, latency, catch-up.
 * - the seed's headline: 10k and 100k signed appends, against huskies' published 1.8 s and
 *   39 s (quoted from its bft-json-crdt README, not re-run here).
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import Hypercore from 'hypercore'
import { openLog } from '../../src/log/open-log.js'
import { SledNode } from '../../src/node/node.js'
import {
  benchScript,
  cpuMicros,
  fmt,
  latencySummary,
  makeEvent,
  now,
  runChild,
  type BenchContext,
  type BenchGroup,
  type BenchResult,
  type RatioDef,
} from './harness.js'
import { label, nextEvent, sleep } from './multi.js'

interface Sizes {
  /** One-at-a-time appends (also the headline's 10k). */
  single: number
  /** Batched appends and replication. */
  n: number
  batch: number
  paced: number
  pacedIntervalMs: number
  /** Headline sizes measured one at a time. */
  headlineSingle: number[]
}

const sizes = (quick: boolean): Sizes =>
  quick
    ? { single: 10_000, n: 3_000, batch: 1000, paced: 300, pacedIntervalMs: 5, headlineSingle: [10_000] }
    : { single: 10_000, n: 100_000, batch: 1000, paced: 2_000, pacedIntervalMs: 5, headlineSingle: [10_000, 100_000] }

/** The bytes hypercore stores per entry: the same event JSON sledlog signs (without sled/seq/ts/sig). */
const eventJson = (i: number): string => JSON.stringify(makeEvent(i))
let hcCounter = 0

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = now() + timeoutMs
  while (!cond()) {
    if (now() > deadline) throw new Error(`${what}: not done within ${timeoutMs} ms`)
    await sleep(2)
  }
}

// ---- hypercore ----

const hypercoreScenario = {
  name: 'hypercore',
  async run(ctx: BenchContext): Promise<void> {
    const z = sizes(ctx.quick)
    const dir = await ctx.tempDir('hypercore')
    const s = 'compare/hypercore'
    const cores: Hypercore[] = []
    const open = async (name: string, key?: Buffer): Promise<Hypercore> => {
      const core =
        key === undefined
          ? new Hypercore(join(dir, name), { valueEncoding: 'utf-8' })
          : new Hypercore(join(dir, name), key, { valueEncoding: 'utf-8' })
      await core.ready()
      cores.push(core)
      return core
    }
    try {
      // Warm-up.
      {
        const w = await open('warm')
        for (let i = 0; i < 500; i++) await w.append(eventJson(hcCounter++))
        for (let i = 0; i < 5; i++) await w.append(Array.from({ length: 1000 }, () => eventJson(hcCounter++)))
      }
      {
        const core = await open('single')
        const lat = new Float64Array(z.single)
        const c0 = cpuMicros()
        const t0 = now()
        for (let i = 0; i < z.single; i++) {
          const t = now()
          await core.append(eventJson(hcCounter++))
          lat[i] = now() - t
        }
        const ms = now() - t0
        const l = latencySummary(lat)
        ctx.record(
          s,
          'append single appends/s',
          (z.single * 1000) / ms,
          'entries/s',
          `await each append, n=${label(z.single)}; one Ed25519 signature (tree root) per append`,
        )
        ctx.record(s, 'append single CPU', (cpuMicros() - c0) / z.single, 'µs', 'process CPU per append, all threads')
        ctx.record(s, 'append single latency p50', l.p50, 'ms')
        ctx.record(s, 'append single latency p99', l.p99, 'ms')
        ctx.record(s, `time for ${label(z.single)} single appends`, ms / 1000, 's')
      }
      let source: Hypercore
      {
        const core = await open('batch')
        const c0 = cpuMicros()
        const t0 = now()
        for (let done = 0; done < z.n; done += z.batch)
          await core.append(Array.from({ length: z.batch }, () => eventJson(hcCounter++)))
        const ms = now() - t0
        ctx.record(
          s,
          `append batch-${z.batch} appends/s`,
          (z.n * 1000) / ms,
          'entries/s',
          `n=${label(z.n)}; one signature per batch`,
        )
        ctx.record(s, `append batch-${z.batch} CPU`, (cpuMicros() - c0) / z.n, 'µs')
        ctx.record(
          s,
          'stored bytes per entry',
          core.byteLength / core.length,
          'B',
          'block payload (event JSON), before tree and storage overhead',
        )
        source = core
      }
      // Live: the reader downloads continuously while the writer appends in batches.
      {
        const w = await open('live-writer')
        const r = await open('live-reader', w.key)
        const s1 = w.replicate(true)
        const s2 = r.replicate(false)
        s1.pipe(s2).pipe(s1)
        const range = r.download({ start: 0, end: -1 })
        const c0 = cpuMicros()
        const t0 = now()
        for (let done = 0; done < z.n; done += z.batch)
          await w.append(Array.from({ length: z.batch }, () => eventJson(hcCounter++)))
        const producerMs = now() - t0
        await until(() => r.contiguousLength >= z.n, 600_000, 'hypercore live replication')
        const ms = now() - t0
        ctx.record(
          s,
          'replicate live entries/s',
          (z.n * 1000) / ms,
          'entries/s',
          `reader holds all ${label(z.n)}; writer appended batches of ${z.batch} ` +
            `at ${fmt((z.n * 1000) / producerMs)}/s; in-memory streams`,
        )
        ctx.record(s, 'replicate live CPU', (cpuMicros() - c0) / z.n, 'µs', 'both instances, one process')
        range.destroy()
        s1.destroy()
        s2.destroy()
      }
      // Catch-up: a fresh reader of the batch core (n entries).
      {
        const r = await open('catch-up-reader', source.key)
        const c0 = cpuMicros()
        const t0 = now()
        const s1 = source.replicate(true)
        const s2 = r.replicate(false)
        s1.pipe(s2).pipe(s1)
        await r.download({ start: 0, end: source.length }).done()
        const ms = now() - t0
        const last = await r.get(source.length - 1)
        if (typeof last !== 'string' || !last.includes('bench.event'))
          throw new Error('hypercore catch-up: last block not readable')
        ctx.record(
          s,
          `catch-up ${label(source.length)} time`,
          ms / 1000,
          's',
          'connect → every block downloaded and verified (Merkle proofs, signed root)',
        )
        ctx.record(s, 'catch-up entries/s', (source.length * 1000) / ms, 'entries/s')
        ctx.record(s, 'catch-up CPU', (cpuMicros() - c0) / source.length, 'µs', 'both instances, one process')
        s1.destroy()
        s2.destroy()
      }
    } finally {
      for (const c of cores) await c.close().catch(() => undefined)
    }
  },
}

// ---- sledlog, same operations ----

async function startNode(dataDir: string, peers: string[]): Promise<SledNode> {
  await mkdir(dataDir, { recursive: true })
  const node = new SledNode({ dataDir, host: '127.0.0.1', port: 0, peers, maxBackoffMs: 500 })
  await node.start()
  return node
}
const wsUrl = (n: SledNode): string => n.url.replace(/^http/, 'ws')

const sledlogScenario = {
  name: 'sledlog',
  async run(ctx: BenchContext): Promise<void> {
    const z = sizes(ctx.quick)
    const s = 'compare/sledlog'
    // Warm-up.
    {
      const log = await openLog(await ctx.tempDir('cmp-warm'))
      for (let i = 0; i < 1000; i++) await log.append(nextEvent())
      for (let i = 0; i < 10; i++) await log.appendBatch(Array.from({ length: 1000 }, nextEvent))
      await log.close()
    }
    for (const n of z.headlineSingle) {
      const log = await openLog(await ctx.tempDir('cmp-single'))
      const lat = new Float64Array(n)
      const c0 = cpuMicros()
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const t = now()
        await log.append(nextEvent())
        lat[i] = now() - t
      }
      const ms = now() - t0
      if (n === z.single) {
        const l = latencySummary(lat)
        ctx.record(
          s,
          'append single appends/s',
          (n * 1000) / ms,
          'entries/s',
          `await each append, n=${label(n)}; one Ed25519 signature per entry, durable (LevelDB, no fsync)`,
        )
        ctx.record(s, 'append single CPU', (cpuMicros() - c0) / n, 'µs', 'process CPU per append, all threads')
        ctx.record(s, 'append single latency p50', l.p50, 'ms')
        ctx.record(s, 'append single latency p99', l.p99, 'ms')
      }
      ctx.record(s, `time for ${label(n)} single appends`, ms / 1000, 's', 'each append awaited (signed, durable)')
      await log.close()
    }
    {
      const log = await openLog(await ctx.tempDir('cmp-batch'))
      const c0 = cpuMicros()
      const t0 = now()
      for (let done = 0; done < z.n; done += z.batch) await log.appendBatch(Array.from({ length: z.batch }, nextEvent))
      const ms = now() - t0
      ctx.record(
        s,
        `append batch-${z.batch} appends/s`,
        (z.n * 1000) / ms,
        'entries/s',
        `appendBatch, n=${label(z.n)}; one signature per entry`,
      )
      ctx.record(s, `append batch-${z.batch} CPU`, (cpuMicros() - c0) / z.n, 'µs')
      await log.close()
    }
    // Two in-process nodes over real websockets on loopback: live, then a fresh node catching up.
    const nodes: SledNode[] = []
    try {
      const a = await startNode(join(await ctx.tempDir('cmp-pair'), 'a'), [])
      nodes.push(a)
      const b = await startNode(join(await ctx.tempDir('cmp-pair'), 'b'), [wsUrl(a)])
      nodes.push(b)
      const sled = a.log.sled
      // Warm-up of the replication path.
      await a.log.appendBatch(Array.from({ length: 1000 }, nextEvent))
      await until(() => b.log.length(sled) >= a.log.length(sled), 60_000, 'sledlog pair warm-up')
      {
        const base = a.log.length(sled)
        const c0 = cpuMicros()
        const t0 = now()
        for (let done = 0; done < z.n; done += z.batch)
          await a.log.appendBatch(Array.from({ length: z.batch }, nextEvent))
        const producerMs = now() - t0
        await until(() => b.log.length(sled) >= base + z.n, 600_000, 'sledlog live replication')
        const ms = now() - t0
        ctx.record(
          s,
          'replicate live entries/s',
          (z.n * 1000) / ms,
          'entries/s',
          `2 SledNodes in this process, websocket on loopback; writer appendBatch(${z.batch}) ` +
            `at ${fmt((z.n * 1000) / producerMs)}/s; reader verifies every signature`,
        )
        ctx.record(s, 'replicate live CPU', (cpuMicros() - c0) / z.n, 'µs', 'both nodes, one process')
      }
      {
        const total = a.log.length(sled)
        const c0 = cpuMicros()
        const t0 = now()
        const c = await startNode(join(await ctx.tempDir('cmp-pair'), 'c'), [wsUrl(a)])
        nodes.push(c)
        await until(() => c.log.length(sled) >= total, 600_000, 'sledlog catch-up')
        const ms = now() - t0
        ctx.record(
          s,
          `catch-up ${label(total)} time`,
          ms / 1000,
          's',
          'fresh in-process node: start → holds all (every signature verified)',
        )
        ctx.record(s, 'catch-up entries/s', (total * 1000) / ms, 'entries/s')
        ctx.record(s, 'catch-up CPU', (cpuMicros() - c0) / total, 'µs', 'both nodes, one process')
      }
    } finally {
      for (const n of nodes.reverse()) await n.stop().catch(() => undefined)
    }
  },
}

// ---- plain Yjs + y-websocket ----

interface YjsWsResult {
  readonly n: number
  readonly liveMs: number
  readonly pushMs: number
  readonly liveCpuUs: number
  readonly paced: number
  readonly intervalMs: number
  readonly latency: { p50: number; p99: number; max: number }
  readonly catchUpEntries: number
  readonly catchUpMs: number
  readonly updateBytes: number
}

const yjsWsScenario = {
  name: 'yjs-websocket',
  async run(ctx: BenchContext): Promise<void> {
    const z = sizes(ctx.quick)
    const s = 'compare/yjs-websocket'
    ctx.progress(`yjs-websocket: child process, n=${label(z.n)}`)
    const { result: r } = await runChild<YjsWsResult>(benchScript('yjs-ws-child.ts'), [
      String(z.n),
      String(z.batch),
      String(z.paced),
      String(z.pacedIntervalMs),
    ])
    ctx.record(
      s,
      'replicate live entries/s',
      (r.n * 1000) / r.liveMs,
      'entries/s',
      `hub + 3 client docs in one process; A pushes ${label(r.n)} in transactions of ${z.batch}; ` +
        'until B and C hold all',
    )
    ctx.record(s, 'replicate live CPU', r.liveCpuUs, 'µs', 'whole process (hub + 3 clients) per entry')
    ctx.record(
      s,
      'append→visible p50',
      r.latency.p50,
      'ms',
      `${r.paced} single pushes, one every ${r.intervalMs} ms; arrival on B and C`,
    )
    ctx.record(s, 'append→visible p99', r.latency.p99, 'ms', `max ${fmt(r.latency.max)} ms`)
    ctx.record(
      s,
      `catch-up ${label(r.catchUpEntries)} time`,
      r.catchUpMs / 1000,
      's',
      'fresh client: connect → holds all',
    )
    ctx.record(s, 'catch-up entries/s', (r.catchUpEntries * 1000) / r.catchUpMs, 'entries/s')
    ctx.record(s, 'doc update per entry', r.updateBytes / r.catchUpEntries, 'B', 'encodeStateAsUpdate of the hub')
  },
}

// ---- the seed's headline ----

/** Time to the k-th entry in single-node/scaling (bursts of 1000), when it ran to `k`. */
function scalingTimeTo(results: readonly BenchResult[], k: number): number | undefined {
  const steps = results.filter(
    (r) =>
      r.group === 'single-node' &&
      r.scenario === 'scaling' &&
      r.metric.startsWith('appends/s ') &&
      r.metric.includes('→'),
  )
  let ms = 0
  let from = 0
  const parse = (t: string): number => Number(t.replace('M', 'e6').replace('k', 'e3'))
  for (const r of steps) {
    const to = parse(r.metric.slice(r.metric.indexOf('→') + 1))
    ms += ((to - from) * 1000) / r.value
    if (to === k) return ms / 1000
    from = to
  }
  return undefined
}

const headlineScenario = {
  name: 'headline',
  async run(ctx: BenchContext): Promise<void> {
    const s = 'compare/headline'
    ctx.record(s, 'huskies 10k signed ops', 1.8, 's', 'published (huskies bft-json-crdt README), not re-run here')
    ctx.record(s, 'huskies 100k signed ops', 39, 's', 'published (huskies bft-json-crdt README), not re-run here')
    const own = ctx.results()
    // --quick skips the 100k re-run: at ~4 s it alone would be a tenth of the quick budget.
    for (const n of ctx.quick ? [10_000] : [10_000, 100_000]) {
      const single = own.find(
        (r) => r.scenario === 'compare/sledlog' && r.metric === `time for ${label(n)} single appends`,
      )
      if (single !== undefined)
        ctx.record(
          s,
          `sledlog ${label(n)} signed appends, one at a time`,
          single.value,
          's',
          'each awaited: signed + durable (compare/sledlog, this run)',
        )
      let burst = scalingTimeTo(own, n)
      let note = 'fire 1000, await all (group commit); from single-node/scaling, this run'
      if (burst === undefined) {
        const log = await openLog(await ctx.tempDir('headline'))
        const t0 = now()
        for (let done = 0; done < n; done += 1000)
          await Promise.all(Array.from({ length: 1000 }, () => log.append(nextEvent())))
        burst = (now() - t0) / 1000
        await log.close()
        note = 'fire 1000, await all (group commit); measured here'
      }
      ctx.record(s, `sledlog ${label(n)} signed appends, bursts of 1000`, burst, 's', note)
    }
  },
}

function ratios(quick: boolean): RatioDef[] {
  const z = sizes(quick)
  const r = (name: string, num: [string, string], den: [string, string], note?: string): RatioDef => ({
    name,
    numerator: { scenario: num[0], metric: num[1] },
    denominator: { scenario: den[0], metric: den[1] },
    ...(note === undefined ? {} : { note }),
  })
  const sl = 'compare/sledlog'
  const hc = 'compare/hypercore'
  const yw = 'compare/yjs-websocket'
  const h = 'compare/headline'
  const out: RatioDef[] = [
    r('sledlog / hypercore: append single', [sl, 'append single appends/s'], [hc, 'append single appends/s']),
    r(
      `sledlog / hypercore: append batch-${z.batch}`,
      [sl, `append batch-${z.batch} appends/s`],
      [hc, `append batch-${z.batch} appends/s`],
      'sledlog signs every entry, hypercore once per batch',
    ),
    r(
      'sledlog / hypercore: live replication (2 instances, 1 process)',
      [sl, 'replicate live entries/s'],
      [hc, 'replicate live entries/s'],
    ),
    r('sledlog / hypercore: catch-up', [sl, 'catch-up entries/s'], [hc, 'catch-up entries/s']),
    r(
      'sledlog pair / yjs-websocket: live replication',
      [sl, 'replicate live entries/s'],
      [yw, 'replicate live entries/s'],
      'both in one process; overhead of signing + guard + persistence',
    ),
    r(
      'sledlog 3 nodes / yjs-websocket: live replication',
      ['replication/one-writer', 'entries/s (all 3 nodes hold all)'],
      [yw, 'replicate live entries/s'],
      'sledlog: 3 processes over HTTP; yjs: hub + 3 docs in one process',
    ),
    r('sledlog pair / yjs-websocket: catch-up', [sl, 'catch-up entries/s'], [yw, 'catch-up entries/s']),
    r(
      'sledlog / yjs-websocket: append→visible p50',
      ['replication/latency-paced', 'append→visible on peers p50'],
      [yw, 'append→visible p50'],
      'sledlog over HTTP + SSE between processes',
    ),
    r(
      'huskies / sledlog: 10k signed, one at a time',
      [h, 'huskies 10k signed ops'],
      [h, 'sledlog 10k signed appends, one at a time'],
      '> 1: sledlog faster',
    ),
    r(
      'huskies / sledlog: 10k signed, bursts',
      [h, 'huskies 10k signed ops'],
      [h, 'sledlog 10k signed appends, bursts of 1000'],
      '> 1: sledlog faster',
    ),
  ]
  if (!quick) {
    out.push(
      r(
        'huskies / sledlog: 100k signed, bursts',
        [h, 'huskies 100k signed ops'],
        [h, 'sledlog 100k signed appends, bursts of 1000'],
        '> 1: sledlog faster',
      ),
    )
    out.push(
      r(
        'huskies / sledlog: 100k signed, one at a time',
        [h, 'huskies 100k signed ops'],
        [h, 'sledlog 100k signed appends, one at a time'],
        '> 1: sledlog faster',
      ),
    )
  }
  return out
}

export const compareGroup: BenchGroup = {
  name: 'compare',
  description:
    'side by side, same run: hypercore (npm), sledlog in-process, plain Yjs + y-websocket, huskies published numbers',
  scenarios: [hypercoreScenario, sledlogScenario, yjsWsScenario, headlineScenario],
  ratios,
}
