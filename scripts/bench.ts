/**
 * `npm run bench [-- options]`: sledlog benchmarks (docs/BENCHMARKS.md).
 *
 *   --quick           small sizes; the whole run takes under a minute
 *   --only <sel>      run only these groups or scenarios: comma-separated `group` or
 *                     `group/scenario` (e.g. `--only crypto,single-node/scaling`)
 *   --json <path>     where to write the results JSON (default bench-results/bench-<timestamp>.json)
 *   --list            list groups and scenarios, then exit
 *
 * Groups live in scripts/bench/ (one file per group); add new ones to GROUPS. The results table
 * goes to stdout, progress to stderr.
 */
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { acksGroup } from './bench/acks.js'
import { cryptoGroup } from './bench/crypto.js'
import { ingestGroup } from './bench/ingest.js'
import {
  fmt,
  fullGc,
  now,
  REPO_ROOT,
  TempDirs,
  type BenchContext,
  type BenchGroup,
  type BenchResult,
  type RatioDef,
} from './bench/harness.js'
import { backupGroup } from './bench/backup.js'
import { compareGroup } from './bench/compare.js'
import { httpGroup } from './bench/http.js'
import { computeRatios, formatMachine, formatResults, machineInfo, writeJson } from './bench/report.js'
import { recoveryGroup } from './bench/recovery.js'
import { replicationGroup } from './bench/replication.js'
import { scalingGroup } from './bench/scaling.js'
import { singleNodeGroup } from './bench/single-node.js'
import { successionGroup } from './bench/succession.js'
import { yjsBaselineGroup } from './bench/yjs-baseline.js'

/** All groups, in run order (crypto first: other groups compare against its limits). */
const GROUPS: readonly BenchGroup[] = [
  cryptoGroup,
  yjsBaselineGroup,
  singleNodeGroup,
  ingestGroup,
  httpGroup,
  replicationGroup,
  acksGroup,
  recoveryGroup,
  compareGroup,
  scalingGroup,
  successionGroup,
  backupGroup,
]

interface Args {
  quick: boolean
  only: string[] | undefined
  json: string | undefined
  list: boolean
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, only: undefined, json: undefined, list: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--quick') args.quick = true
    else if (a === '--only')
      args.only = [
        ...(args.only ?? []),
        ...value()
          .split(',')
          .filter((s) => s !== ''),
      ]
    else if (a.startsWith('--only='))
      args.only = [
        ...(args.only ?? []),
        ...a
          .slice(7)
          .split(',')
          .filter((s) => s !== ''),
      ]
    else if (a === '--json') args.json = value()
    else if (a.startsWith('--json=')) args.json = a.slice(7)
    else if (a === '--list') args.list = true
    else throw new Error(`unknown argument ${a} (try --list, --quick, --only <group>, --json <path>)`)
  }
  return args
}

function selected(only: readonly string[] | undefined, group: string, scenario: string): boolean {
  return only === undefined || only.some((s) => s === group || s === `${group}/${scenario}`)
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  if (args.list) {
    for (const g of GROUPS)
      console.log(`${g.name}: ${g.description}\n${g.scenarios.map((s) => `  ${g.name}/${s.name}`).join('\n')}`)
    return
  }
  if (args.only !== undefined) {
    const known = GROUPS.flatMap((g) => [g.name, ...g.scenarios.map((s) => `${g.name}/${s.name}`)])
    const unknown = args.only.filter((s) => !known.includes(s))
    if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')}; known: ${known.join(', ')}`)
  }
  const startedAt = new Date()
  const machine = await machineInfo()
  console.log(`sledlog bench (${args.quick ? 'quick' : 'full'} run), ${startedAt.toISOString()}`)
  console.log(formatMachine(machine))
  console.log(`gc: ${fullGc() ? 'available' : 'unavailable (heap figures of this process are skipped)'}\n`)

  const results: BenchResult[] = []
  const timings: Array<{ scenario: string; seconds: number; loadAvg1AtEnd: number }> = []
  const temp = new TempDirs()
  const t0 = now()
  try {
    for (const group of GROUPS) {
      const scenarios = group.scenarios.filter((s) => selected(args.only, group.name, s.name))
      if (scenarios.length === 0) continue
      process.stderr.write(`== ${group.name}: ${group.description}\n`)
      const ctx: BenchContext = {
        quick: args.quick,
        record(scenario, metric, value, unit, note) {
          const r: BenchResult = {
            group: group.name,
            scenario,
            metric,
            value,
            unit,
            ...(note === undefined ? {} : { note }),
          }
          results.push(r)
          process.stderr.write(`   ${scenario}  ${metric}: ${fmt(value)} ${unit}\n`)
        },
        tempDir: (label) => temp.make(label),
        progress: (message) => process.stderr.write(`   … ${message}\n`),
        results: () => results,
      }
      for (const s of scenarios) {
        const ts = now()
        await s.run(ctx)
        const seconds = (now() - ts) / 1000
        const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100
        timings.push({ scenario: `${group.name}/${s.name}`, seconds, loadAvg1AtEnd: load1 })
        process.stderr.write(`   [${group.name}/${s.name} took ${seconds.toFixed(1)} s; load average ${load1}]\n`)
        await temp.cleanup()
      }
    }
  } finally {
    await temp.cleanup()
  }
  const durationS = (now() - t0) / 1000

  const defs: RatioDef[] = GROUPS.flatMap((g) =>
    g.ratios === undefined ? [] : typeof g.ratios === 'function' ? [...g.ratios(args.quick)] : [...g.ratios],
  )
  const ratios = computeRatios(defs, results)
  console.log(formatResults(results, ratios))
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  const jsonPath = args.json ?? join(REPO_ROOT, 'bench-results', `bench-${args.quick ? 'quick-' : ''}${stamp}.json`)
  const loadAvgAtEnd = loadavg().map((l) => Math.round(l * 100) / 100)
  await writeJson(jsonPath, {
    machine,
    loadAvgAtEnd,
    args: process.argv.slice(2),
    quick: args.quick,
    startedAt: startedAt.toISOString(),
    durationS,
    timings,
    results,
    ratios,
  })
  console.log(
    `\ntotal ${durationS.toFixed(1)} s; load average at end ${loadAvgAtEnd.join(' ')}; results written to ${jsonPath}`,
  )
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
