/**
 * Shared machinery of the benchmark (`npm run bench`, scripts/bench.ts): what a scenario group
 * is, the context scenarios run in, timing and statistics helpers, the synthetic entries, temp
 * directories and child processes.
 *
 * To add a group: write `scripts/bench/<group>.ts` exporting a {@link BenchGroup} and add it to
 * `GROUPS` in scripts/bench.ts. Each scenario records results with `ctx.record(...)`; a group can
 * declare {@link RatioDef}s against any group's results, computed once everything has run.
 */
import { spawn } from 'node:child_process'
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Root of the repository (where package.json and node_modules live). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** One measured number. */
export interface BenchResult {
  /** Group that produced it, e.g. "single-node". */
  readonly group: string
  /** Scenario (and variant) inside the group, e.g. "append/burst-64". */
  readonly scenario: string
  readonly metric: string
  readonly value: number
  readonly unit: string
  /** Free-form detail: sizes, parameters, caveats. */
  readonly note?: string
}

/** A ratio between two results, computed after all groups ran (skipped if either is missing). */
export interface RatioDef {
  readonly name: string
  readonly numerator: { readonly scenario: string; readonly metric: string }
  readonly denominator: { readonly scenario: string; readonly metric: string }
  readonly note?: string
}

/** A computed ratio. */
export interface RatioResult {
  readonly name: string
  readonly value: number
  readonly numerator: string
  readonly denominator: string
  readonly note?: string
}

/** What a scenario gets. */
export interface BenchContext {
  /** `--quick`: small sizes, whole run under a minute. */
  readonly quick: boolean
  /** Records a result (and prints a progress line on stderr). */
  record(scenario: string, metric: string, value: number, unit: string, note?: string): void
  /** A fresh directory under os.tmpdir(), removed when the run ends (or is interrupted). */
  tempDir(label: string): Promise<string>
  /** A progress message on stderr. */
  progress(message: string): void
  /** Results recorded so far (all groups), e.g. to compare against the crypto limit. */
  results(): readonly BenchResult[]
}

/** A named scenario of a group. */
export interface BenchScenario {
  readonly name: string
  readonly run: (ctx: BenchContext) => Promise<void>
}

/** A group of scenarios, selectable with `--only <group>` or `--only <group>/<scenario>`. */
export interface BenchGroup {
  readonly name: string
  readonly description: string
  readonly scenarios: readonly BenchScenario[]
  /** Ratios to report; a function when the operands' names depend on `--quick` sizes. */
  readonly ratios?: readonly RatioDef[] | ((quick: boolean) => readonly RatioDef[])
}

// ---- timing and statistics ----

/** Milliseconds since an arbitrary origin, sub-ms resolution. */
export const now = (): number => performance.now()

/** A throughput measurement: wall-clock rate and process CPU time per operation. */
export interface Rate {
  /** Operations per wall-clock second. */
  readonly perSecond: number
  /** Process CPU time per operation, µs: what one operation costs, whatever else runs. */
  readonly cpuUs: number
}

/**
 * Runs `fn(k)` (which performs k operations) repeatedly, doubling k, until at least `minMs`
 * elapsed.
 */
export function measureRate(minMs: number, fn: (k: number) => void): Rate {
  let k = 16
  let ops = 0
  const c0 = cpuMicros()
  const t0 = now()
  let elapsed = 0
  while (elapsed < minMs) {
    fn(k)
    ops += k
    elapsed = now() - t0
    if (k < 1024) k *= 2
  }
  return { perSecond: (ops * 1000) / elapsed, cpuUs: (cpuMicros() - c0) / ops }
}

/** Like {@link measureRate} for asynchronous operations. */
export async function measureRateAsync(minMs: number, fn: (k: number) => Promise<void>): Promise<Rate> {
  let k = 4
  let ops = 0
  const c0 = cpuMicros()
  const t0 = now()
  let elapsed = 0
  while (elapsed < minMs) {
    await fn(k)
    ops += k
    elapsed = now() - t0
    if (k < 1024) k *= 2
  }
  return { perSecond: (ops * 1000) / elapsed, cpuUs: (cpuMicros() - c0) / ops }
}

function medianRate(rates: Rate[]): Rate {
  const mid = Math.floor(rates.length / 2)
  const wall = rates.map((r) => r.perSecond).sort((a, b) => a - b)
  const cpu = rates.map((r) => r.cpuUs).sort((a, b) => a - b)
  return { perSecond: wall[mid] as number, cpuUs: cpu[mid] as number }
}

/**
 * Medians of `rounds` measurements of `totalMs / rounds` each: robust against a neighbour
 * stealing the CPU for a moment.
 */
export function medianRateOf(totalMs: number, fn: (k: number) => void, rounds = 5): Rate {
  return medianRate(Array.from({ length: rounds }, () => measureRate(totalMs / rounds, fn)))
}

/** Async version of {@link medianRateOf}. */
export async function medianRateOfAsync(totalMs: number, fn: (k: number) => Promise<void>, rounds = 5): Promise<Rate> {
  const rates: Rate[] = []
  for (let i = 0; i < rounds; i++) rates.push(await measureRateAsync(totalMs / rounds, fn))
  return medianRate(rates)
}

/** Process CPU time (all threads: main, libuv pool, LevelDB background), microseconds. */
export function cpuMicros(): number {
  const c = process.cpuUsage()
  return c.user + c.system
}

/** Nearest-rank percentile of an already sorted array (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] as number
}

/** p50, p99 and max of a set of samples (ms). */
export function latencySummary(samples: Float64Array): { p50: number; p99: number; max: number; mean: number } {
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sum / sorted.length,
  }
}

let gcFn: (() => void) | undefined | null = null

/**
 * The garbage collector: `global.gc` under --expose-gc; otherwise (`npm run bench` runs plain
 * `tsx`) the flag is set at run time and `gc` taken from a fresh V8 context.
 */
function getGc(): (() => void) | undefined {
  if (gcFn !== null) return gcFn
  gcFn = (globalThis as { gc?: () => void }).gc
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gcFn = runInNewContext('gc') as () => void
    } catch {
      gcFn = undefined
    }
  }
  return gcFn
}

/** Forces a full garbage collection; false when no collector could be reached. */
export function fullGc(): boolean {
  const gc = getGc()
  if (gc === undefined) return false
  gc()
  gc()
  return true
}

// ---- synthetic entries ----

/** Target size of an entry's payload (its JSON text), bytes. */
export const PAYLOAD_BYTES = 250

const payloadBase = (
  i: number,
  text: string,
): { i: number; user: string; action: string; path: string; text: string } => ({
  i,
  user: `user-${i % 997}`,
  action: 'item.viewed',
  path: `/shop/items/${(i * 7919) % 100_000}`,
  text,
})
const FILLER_CHARS = Math.max(0, PAYLOAD_BYTES - JSON.stringify(payloadBase(500_000, '')).length)

/**
 * Free text of the payloads: 4096 different word salads, so that LevelDB's block compression
 * sees text-like data rather than one string repeated in every entry (which would flatter the
 * disk figures).
 */
const FILLERS: readonly string[] = (() => {
  const words = (
    'order item cart user account payment refund shipped delivered warehouse parcel invoice ' +
    'customer address review rating stock price discount coupon session login logout search ' +
    'click view page banner campaign email notice reminder support ticket agent queue status ' +
    'pending done failed retry timeout region zone north south east west blue green red large ' +
    'small fast slow first last new old open closed ready error warning info debug trace'
  ).split(' ')
  let x = 0x9e3779b9
  const rand = (): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
  return Array.from({ length: 4096 }, () => {
    let t = ''
    while (t.length < FILLER_CHARS) t += (words[Math.floor(rand() * words.length)] as string) + ' '
    return t.slice(0, FILLER_CHARS)
  })
})()

/** A realistic event payload of about {@link PAYLOAD_BYTES} bytes of JSON, varying with `i`. */
export function makePayload(i: number): { i: number; user: string; action: string; path: string; text: string } {
  return payloadBase(i, FILLERS[i % FILLERS.length] as string)
}

/** The event appended by the benchmarks. */
export function makeEvent(i: number): { type: string; payload: unknown } {
  return { type: 'bench.event', payload: makePayload(i) }
}

// ---- formatting ----

/** Formats a number for tables: thousands separators above 100, three significant digits below. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a >= 100) return Math.round(v).toLocaleString('en-US')
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  if (a === 0) return '0'
  return v.toPrecision(3)
}

// ---- files ----

/** Apparent size and allocated size of a directory tree, bytes (like `du -b` and `du -B1`). */
export async function diskUsage(dir: string): Promise<{ bytes: number; allocated: number; files: number }> {
  let bytes = 0
  let allocated = 0
  let files = 0
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const p = join(d, name)
      const st = await lstat(p)
      if (st.isDirectory()) await walk(p)
      else {
        bytes += st.size
        allocated += st.blocks * 512
        files++
      }
    }
  }
  await walk(dir)
  return { bytes, allocated, files }
}

/** Temp directories of a run; removed by {@link TempDirs.cleanup} (also on SIGINT/SIGTERM). */
export class TempDirs {
  readonly #dirs: string[] = []

  constructor() {
    const onSignal = (sig: NodeJS.Signals): void => {
      this.cleanupSync()
      process.kill(process.pid, sig)
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }

  async make(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `sledlog-bench-${label.replace(/[^a-z0-9-]/gi, '_')}-`))
    this.#dirs.push(dir)
    return dir
  }

  async cleanup(): Promise<void> {
    for (const d of this.#dirs.splice(0)) await rm(d, { recursive: true, force: true })
  }

  cleanupSync(): void {
    for (const d of this.#dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  }
}

// ---- child processes ----

/**
 * Runs `node --expose-gc --import tsx <script> ...args` in a fresh process (from the repo root,
 * where `tsx` resolves) and parses the last stdout line as JSON. Used wherever a fresh heap or
 * an unpatched module state is the honest setting (restart time, heap after open, plain Yjs).
 */
export function runChild<T>(
  script: string,
  args: readonly string[],
  opts: { maxOldSpaceMb?: number } = {},
): Promise<{ result: T; wallMs: number }> {
  const nodeArgs = [
    '--expose-gc',
    ...(opts.maxOldSpaceMb === undefined ? [] : [`--max-old-space-size=${opts.maxOldSpaceMb}`]),
    '--import',
    'tsx',
    script,
    ...args,
  ]
  const t0 = now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      out += d
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const wallMs = now() - t0
      if (code !== 0) return reject(new Error(`${script} ${args.join(' ')} exited with ${code}`))
      const line = out.trim().split('\n').pop() ?? ''
      try {
        resolve({ result: JSON.parse(line) as T, wallMs })
      } catch {
        reject(new Error(`${script}: last stdout line is not JSON: ${line.slice(0, 200)}`))
      }
    })
  })
}

/** Absolute path of a script next to this file. */
export function benchScript(name: string): string {
  return fileURLToPath(new URL(name, import.meta.url))
}
