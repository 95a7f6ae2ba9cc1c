/**
 * Group "single-node": one SledLog on a real LevelDB in a temp directory. Append throughput
 * (one at a time, same-tick bursts that share a group commit, appendBatch), with and without
 * fsync; append latency; throughput as the log grows to 1M entries; restart (open in a fresh
 * process), heap and disk per entry.
 */
import { encodeEntryJson } from '../../src/core/entry.js'
import { openLog, type OpenLogOptions } from '../../src/log/open-log.js'
import type { SledLog } from '../../src/log/sled-log.js'
import {
  benchScript,
  cpuMicros,
  diskUsage,
  fullGc,
  latencySummary,
  makeEvent,
  now,
  runChild,
  type BenchContext,
  type BenchGroup,
  type BenchScenario,
  type RatioDef,
} from './harness.js'

const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n))

let counter = 0
const nextEvent = (): { type: string; payload: unknown } => makeEvent(counter++)

async function freshLog(
  ctx: BenchContext,
  name: string,
  opts: OpenLogOptions = {},
): Promise<{ log: SledLog; dir: string }> {
  const dir = await ctx.tempDir(name)
  return { log: await openLog(dir, opts), dir }
}

let warmed = false
/** JIT warm-up of the append path, once per process, so the first scenario is not penalized. */
async function warmUp(ctx: BenchContext): Promise<void> {
  if (warmed) return
  warmed = true
  const { log } = await freshLog(ctx, 'warmup')
  for (let i = 0; i < 1000; i++) await log.append(nextEvent())
  for (let r = 0; r < 20; r++) await Promise.all(Array.from({ length: 100 }, () => log.append(nextEvent())))
  for (let r = 0; r < 20; r++) await log.appendBatch(Array.from({ length: 100 }, nextEvent))
  await log.close()
}

// ---- append patterns ----

/** One append at a time, each awaited; returns appends/s and per-append latencies (ms). */
async function appendSingle(log: SledLog, n: number): Promise<{ rate: number; cpuUs: number; lat: Float64Array }> {
  const lat = new Float64Array(n)
  const c0 = cpuMicros()
  const t0 = now()
  for (let i = 0; i < n; i++) {
    const t = now()
    await log.append(nextEvent())
    lat[i] = now() - t
  }
  return { rate: n / ((now() - t0) / 1000), cpuUs: (cpuMicros() - c0) / n, lat }
}

/** Fires `k` appends in the same tick, awaits them all, repeats: group commit. */
async function appendBursts(log: SledLog, n: number, k: number): Promise<{ rate: number; cpuUs: number }> {
  const c0 = cpuMicros()
  const t0 = now()
  for (let done = 0; done < n; ) {
    const m = Math.min(k, n - done)
    const ps: Promise<unknown>[] = new Array(m)
    for (let i = 0; i < m; i++) ps[i] = log.append(nextEvent())
    await Promise.all(ps)
    done += m
  }
  return { rate: n / ((now() - t0) / 1000), cpuUs: (cpuMicros() - c0) / n }
}

/** appendBatch of `size` entries, awaited, repeated. */
async function appendBatches(log: SledLog, n: number, size: number): Promise<{ rate: number; cpuUs: number }> {
  const c0 = cpuMicros()
  const t0 = now()
  for (let done = 0; done < n; ) {
    const m = Math.min(size, n - done)
    await log.appendBatch(Array.from({ length: m }, nextEvent))
    done += m
  }
  return { rate: n / ((now() - t0) / 1000), cpuUs: (cpuMicros() - c0) / n }
}

/** Closed loop with `inFlight` concurrent appenders; returns appends/s and latencies (ms). */
async function appendInFlight(
  log: SledLog,
  n: number,
  inFlight: number,
): Promise<{ rate: number; cpuUs: number; lat: Float64Array }> {
  const lat = new Float64Array(n)
  let issued = 0
  const worker = async (): Promise<void> => {
    while (issued < n) {
      const i = issued++
      const t = now()
      await log.append(nextEvent())
      lat[i] = now() - t
    }
  }
  const c0 = cpuMicros()
  const t0 = now()
  await Promise.all(Array.from({ length: inFlight }, worker))
  return { rate: n / ((now() - t0) / 1000), cpuUs: (cpuMicros() - c0) / n, lat }
}

function recordLatency(ctx: BenchContext, scenario: string, lat: Float64Array): void {
  const s = latencySummary(lat)
  ctx.record(scenario, 'latency p50', s.p50, 'ms')
  ctx.record(scenario, 'latency p99', s.p99, 'ms')
  ctx.record(scenario, 'latency max', s.max, 'ms')
}

// ---- scenarios ----

interface Sizes {
  single: number
  burst: number
  batch: number
  inFlight: number
  syncSingle: number
  syncBurst: number
  syncBatch: number
  scaling: number[]
  open: number[]
  openSmallRecords: number
}

const sizes = (quick: boolean): Sizes =>
  quick
    ? {
        single: 3_000,
        burst: 5_000,
        batch: 5_000,
        inFlight: 3_000,
        syncSingle: 300,
        syncBurst: 2_000,
        syncBatch: 3_000,
        scaling: [10_000, 20_000],
        open: [10_000],
        openSmallRecords: 2_000,
      }
    : {
        single: 20_000,
        burst: 100_000,
        batch: 100_000,
        inFlight: 50_000,
        syncSingle: 2_000,
        syncBurst: 20_000,
        syncBatch: 50_000,
        scaling: [10_000, 100_000, 1_000_000],
        open: [100_000, 1_000_000],
        openSmallRecords: 20_000,
      }

/** Throughput of each append pattern with the given durability. */
function appendScenario(name: string, sync: boolean): BenchScenario {
  const prefix = sync ? 'append-sync' : 'append'
  const opts: OpenLogOptions = sync ? { sync: true } : {}
  return {
    name,
    async run(ctx) {
      await warmUp(ctx)
      const z = sizes(ctx.quick)
      const nSingle = sync ? z.syncSingle : z.single
      const nBurst = sync ? z.syncBurst : z.burst
      const nBatch = sync ? z.syncBatch : z.batch
      {
        const { log } = await freshLog(ctx, `${prefix}-single`, opts)
        const { rate, cpuUs, lat } = await appendSingle(log, nSingle)
        ctx.record(`${prefix}/single`, 'appends/s', rate, 'entries/s', `await each append, n=${label(nSingle)}`)
        ctx.record(`${prefix}/single`, 'CPU per append', cpuUs, 'µs', 'process CPU, all threads')
        recordLatency(ctx, `${prefix}/single`, lat)
        const sample = log.get(log.sled, 0)
        if (!sync && sample !== undefined && sample.kind === 'event') {
          const { sig, ...entry } = sample
          ctx.record(
            `${prefix}/single`,
            'payload size',
            Buffer.byteLength(JSON.stringify(sample.payload)),
            'B',
            'JSON of one payload',
          )
          ctx.record(
            `${prefix}/single`,
            'record size',
            sig.length + 1 + Buffer.byteLength(encodeEntryJson(entry)),
            'B',
            'signature + entry JSON, as stored',
          )
        }
        await log.close()
      }
      for (const k of sync ? [64] : [64, 1000]) {
        const { log } = await freshLog(ctx, `${prefix}-burst-${k}`, opts)
        const { rate, cpuUs } = await appendBursts(log, nBurst, k)
        ctx.record(
          `${prefix}/burst-${k}`,
          'appends/s',
          rate,
          'entries/s',
          `fire ${k} appends, await all; n=${label(nBurst)}`,
        )
        ctx.record(`${prefix}/burst-${k}`, 'CPU per append', cpuUs, 'µs')
        await log.close()
      }
      for (const size of sync ? [100] : [100, 1000]) {
        const { log } = await freshLog(ctx, `${prefix}-batch-${size}`, opts)
        const { rate, cpuUs } = await appendBatches(log, nBatch, size)
        ctx.record(
          `${prefix}/batch-${size}`,
          'appends/s',
          rate,
          'entries/s',
          `appendBatch(${size}); n=${label(nBatch)}`,
        )
        ctx.record(`${prefix}/batch-${size}`, 'CPU per append', cpuUs, 'µs')
        await log.close()
      }
    },
  }
}

const latencyScenario: BenchScenario = {
  name: 'latency',
  async run(ctx) {
    await warmUp(ctx)
    const z = sizes(ctx.quick)
    for (const sync of [false, true]) {
      const inFlight = 64
      const n = sync ? z.syncBurst : z.inFlight
      const { log } = await freshLog(ctx, `latency-${sync}`, sync ? { sync: true } : {})
      const { rate, cpuUs, lat } = await appendInFlight(log, n, inFlight)
      const scenario = `${sync ? 'latency-sync' : 'latency'}/in-flight-${inFlight}`
      ctx.record(
        scenario,
        'appends/s',
        rate,
        'entries/s',
        `${inFlight} concurrent appenders, closed loop; n=${label(n)}`,
      )
      ctx.record(scenario, 'CPU per append', cpuUs, 'µs')
      recordLatency(ctx, scenario, lat)
      await log.close()
    }
  },
}

const scalingScenario: BenchScenario = {
  name: 'scaling',
  async run(ctx) {
    await warmUp(ctx)
    const milestones = sizes(ctx.quick).scaling
    const window = milestones[0] as number
    const burst = 1000
    fullGc()
    const heapBase = process.memoryUsage().heapUsed
    const { log, dir } = await freshLog(ctx, 'scaling')
    let n = 0
    let from = 0
    const tStart = now()
    let activeMs = 0
    const rates: number[] = []
    const cpus: number[] = []
    for (const m of milestones) {
      const c0 = cpuMicros()
      const t0 = now()
      let worstWindowMs = 0
      let windowStart = now()
      while (n < m) {
        const k = Math.min(burst, m - n)
        const ps: Promise<unknown>[] = new Array(k)
        for (let i = 0; i < k; i++) ps[i] = log.append(nextEvent())
        await Promise.all(ps)
        n += k
        if (n % window === 0) {
          const t = now()
          worstWindowMs = Math.max(worstWindowMs, t - windowStart)
          windowStart = t
        }
      }
      const ms = now() - t0
      const cpuUs = (cpuMicros() - c0) / (m - from)
      cpus.push(cpuUs)
      activeMs += ms
      const rate = ((m - from) * 1000) / ms
      rates.push(rate)
      const step = `${label(from)}→${label(m)}`
      ctx.record('scaling', `appends/s ${step}`, rate, 'entries/s', `bursts of ${burst}`)
      ctx.record(
        'scaling',
        `ms per ${label(window)} ${step}`,
        (ms * window) / (m - from),
        'ms',
        `mean; worst window ${Math.round(worstWindowMs)} ms`,
      )
      ctx.record('scaling', `CPU per append ${step}`, cpuUs, 'µs', 'process CPU, all threads')
      // Heap of the process holding the log (outside the timed window).
      if (fullGc())
        ctx.record(
          'scaling',
          `heap per entry @${label(m)}`,
          (process.memoryUsage().heapUsed - heapBase) / m,
          'B',
          'heap growth since before open, after gc',
        )
      from = m
    }
    ctx.record(
      'scaling',
      'appends/s overall',
      n / (activeMs / 1000),
      'entries/s',
      `0→${label(n)}, gc pauses for heap readings excluded`,
    )
    ctx.record(
      'scaling',
      'CPU per append overall',
      cpus.reduce((a, c, i) => a + c * ((milestones[i] as number) - (i === 0 ? 0 : (milestones[i - 1] as number))), 0) /
        n,
      'µs',
      'process CPU, all threads',
    )
    const first = rates[0]
    const last = rates[rates.length - 1]
    if (first !== undefined && last !== undefined)
      ctx.record('scaling', 'appends/s last/first', last / first, 'ratio', '1.0 = linear (wall clock)')
    const cFirst = cpus[0]
    const cLast = cpus[cpus.length - 1]
    if (cFirst !== undefined && cLast !== undefined)
      ctx.record(
        'scaling',
        'CPU per append last/first',
        cLast / cFirst,
        'ratio',
        '1.0 = linear; insensitive to other load',
      )
    const st = log.status()
    await log.close()
    const du = await diskUsage(dir)
    ctx.record(
      'scaling',
      `disk per entry @${label(n)}`,
      du.allocated / n,
      'B',
      `${(du.allocated / 2 ** 20).toFixed(0)} MiB in ${du.files} files; ` +
        `snapshot ${(st.store.snapshotBytes / 2 ** 20).toFixed(0)} MiB + ${st.store.updatesSinceSnapshot} updates`,
    )
    ctx.progress(`scaling done in ${((now() - tStart) / 1000).toFixed(1)} s`)
  },
}

interface OpenChildResult {
  readonly entries: number
  readonly rejected: number
  readonly updatesSinceSnapshot: number
  readonly snapshotBytes: number
  readonly openMs: number
  readonly openCpuMs: number
  readonly readyUptimeMs: number
  readonly closeMs: number
  readonly heapBefore: number
  readonly heapAfter: number
  readonly rssAfter: number
  readonly arrayBuffersAfter: number
}

/** Opens `dir` in fresh processes (mac, then full) and records time, heap and disk. */
async function measureOpen(
  ctx: BenchContext,
  scenario: string,
  dir: string,
  entries: number,
  modes: readonly ('mac' | 'full')[],
): Promise<void> {
  const du = await diskUsage(dir)
  ctx.record(
    scenario,
    'disk',
    du.allocated / 2 ** 20,
    'MiB',
    `${du.files} files, apparent ${(du.bytes / 2 ** 20).toFixed(1)} MiB`,
  )
  ctx.record(scenario, 'disk per entry', du.allocated / entries, 'B')
  for (const mode of modes) {
    ctx.progress(`${scenario}: opening ${label(entries)} entries in a child process (verifyOnOpen ${mode})`)
    const { result: r, wallMs } = await runChild<OpenChildResult>(benchScript('open-child.ts'), [dir, mode])
    if (r.entries !== entries || r.rejected !== 0)
      throw new Error(`${scenario}: child opened ${r.entries} entries, ${r.rejected} rejected; expected ${entries}`)
    const store = `snapshot ${(r.snapshotBytes / 2 ** 20).toFixed(0)} MiB + ${r.updatesSinceSnapshot} updates`
    ctx.record(scenario, `open (${mode})`, r.openMs, 'ms', mode === 'mac' ? store : 'every signature verified')
    ctx.record(scenario, `open CPU (${mode})`, r.openCpuMs, 'ms', 'process CPU, all threads')
    ctx.record(scenario, `open rate (${mode})`, (entries * 1000) / r.openMs, 'entries/s')
    ctx.record(
      scenario,
      `restart to ready (${mode})`,
      r.readyUptimeMs,
      'ms',
      `process start → open log (tsx); child wall ${Math.round(wallMs)} ms incl. close`,
    )
    ctx.record(
      scenario,
      `heap after open (${mode})`,
      r.heapAfter / 2 ** 20,
      'MiB',
      `rss ${(r.rssAfter / 2 ** 20).toFixed(0)} MiB`,
    )
    ctx.record(
      scenario,
      `heap per entry (${mode})`,
      (r.heapAfter - r.heapBefore) / entries,
      'B',
      'heapUsed after gc minus before open',
    )
  }
}

const openScenario: BenchScenario = {
  name: 'open',
  async run(ctx) {
    await warmUp(ctx)
    const dir = await ctx.tempDir('open')
    let n = 0
    for (const target of sizes(ctx.quick).open) {
      ctx.progress(`open: building a log of ${label(target)} entries (appendBatch 1000)`)
      const t0 = now()
      const log = await openLog(dir)
      const reopenMs = now() - t0
      if (n > 0) ctx.record(`open/${label(n)}`, 'reopen in-process (mac)', reopenMs, 'ms', 'same process, warm JIT')
      while (n < target) {
        const k = Math.min(1000, target - n)
        await log.appendBatch(Array.from({ length: k }, nextEvent))
        n += k
      }
      await log.close()
      await measureOpen(ctx, `open/${label(n)}`, dir, n, ['mac', 'full'])
    }
  },
}

const openSmallRecordsScenario: BenchScenario = {
  name: 'open-small-records',
  async run(ctx) {
    await warmUp(ctx)
    const n = sizes(ctx.quick).openSmallRecords
    ctx.progress(`open-small-records: building ${label(n)} entries appended one at a time`)
    const { log, dir } = await freshLog(ctx, 'open-small')
    for (let i = 0; i < n; i++) await log.append(nextEvent())
    await log.close()
    await measureOpen(ctx, `open/${label(n)}-single-appends`, dir, n, ['mac'])
  },
}

function ratios(quick: boolean): RatioDef[] {
  const z = sizes(quick)
  const bigOpen = `open/${label(z.open[z.open.length - 1] as number)}`
  const sign = { scenario: 'crypto/node', metric: 'sign' }
  const frac = (scenario: string, metric = 'appends/s'): RatioDef => ({
    name: `${scenario} / node sign`,
    numerator: { scenario, metric },
    denominator: sign,
    note: 'fraction of the single-core Ed25519 sign limit',
  })
  const signCpu = (scenario: string, metric = 'CPU per append'): RatioDef => ({
    name: `sign CPU / ${scenario} CPU`,
    numerator: { scenario: 'crypto/node', metric: 'sign CPU' },
    denominator: { scenario, metric },
    note: "Ed25519 signing's share of the CPU an append costs (robust to other load)",
  })
  return [
    signCpu('append/single'),
    signCpu('append/burst-1000'),
    signCpu('append/batch-1000'),
    signCpu('scaling', 'CPU per append overall'),
    frac('append/single'),
    frac('append/burst-64'),
    frac('append/burst-1000'),
    frac('append/batch-1000'),
    frac('scaling', 'appends/s overall'),
    {
      name: 'scaling / yjs linear push',
      numerator: { scenario: 'scaling', metric: 'appends/s overall' },
      denominator: { scenario: 'yjs/linear-single', metric: 'push/s overall' },
      note: 'sledlog append (signed, durable, bursts of 1000) vs plain Y.Array push of the same records',
    },
    {
      name: 'append/single / yjs linear push',
      numerator: { scenario: 'append/single', metric: 'appends/s' },
      denominator: { scenario: 'yjs/linear-single', metric: 'push/s overall' },
    },
    {
      name: 'append/batch-1000 / yjs batch-1000 push',
      numerator: { scenario: 'append/batch-1000', metric: 'appends/s' },
      denominator: { scenario: 'yjs/linear-batch-1000', metric: 'push/s overall' },
    },
    {
      name: 'append-sync/single / append/single',
      numerator: { scenario: 'append-sync/single', metric: 'appends/s' },
      denominator: { scenario: 'append/single', metric: 'appends/s' },
      note: 'cost of fsync per commit',
    },
    {
      name: `${bigOpen} open rate (full) / node verify`,
      numerator: { scenario: bigOpen, metric: 'open rate (full)' },
      denominator: { scenario: 'crypto/node', metric: 'verify' },
      note: 'fraction of the single-core verify limit',
    },
    {
      name: `${bigOpen} heap per entry (mac) / yjs heap per entry`,
      numerator: { scenario: bigOpen, metric: 'heap per entry (mac)' },
      denominator: { scenario: 'yjs/linear-single', metric: 'heap per entry' },
    },
  ]
}

export const singleNodeGroup: BenchGroup = {
  name: 'single-node',
  description: 'one SledLog on LevelDB in a temp dir: append throughput/latency, scaling to 1M, restart',
  scenarios: [
    appendScenario('append', false),
    appendScenario('append-sync', true),
    latencyScenario,
    scalingScenario,
    openScenario,
    openSmallRecordsScenario,
  ],
  ratios,
}
