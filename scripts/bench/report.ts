/**
 * Benchmark output: the machine description, the results table (stdout), ratios, and the JSON
 * file.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { arch, availableParallelism, cpus, freemem, loadavg, platform, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fmt, REPO_ROOT, type BenchResult, type RatioDef, type RatioResult } from './harness.js'

/** The machine the numbers were measured on. */
export interface MachineInfo {
  readonly cpuModel: string
  readonly cpus: number
  readonly availableParallelism: number
  readonly totalMemGiB: number
  readonly freeMemGiB: number
  /** 1/5/15-minute load averages when the run started: other work on the machine skews results. */
  readonly loadAvg: readonly number[]
  readonly node: string
  readonly v8: string
  readonly platform: string
  readonly tmpdir: string
  readonly tmpFilesystem: string
  readonly versions: Readonly<Record<string, string>>
  /** Commit measured, and whether src/ had uncommitted changes (others work in the same tree). */
  readonly git: { readonly commit: string; readonly srcDirty: boolean }
}

function gitInfo(): { commit: string; srcDirty: boolean } {
  try {
    const opts = {
      cwd: REPO_ROOT,
      encoding: 'utf8' as const,
      stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'],
    }
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], opts).trim() !== ''
    return { commit, srcDirty: dirty }
  } catch {
    return { commit: 'unknown', srcDirty: false }
  }
}

async function packageVersion(name: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? '?'
  } catch {
    return '?'
  }
}

function tmpFilesystem(): string {
  try {
    const out = execFileSync('df', ['-T', tmpdir()], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const cols = (out.trim().split('\n').pop() ?? '').split(/\s+/)
    return `${cols[1] ?? '?'} on ${cols[0] ?? '?'}`
  } catch {
    return 'unknown'
  }
}

/** Describes this machine and the versions of what is measured. */
export async function machineInfo(): Promise<MachineInfo> {
  const list = cpus()
  const versions: Record<string, string> = {}
  for (const name of ['yjs', 'level', 'classic-level', '@noble/ed25519', 'tsx'])
    versions[name] = await packageVersion(name)
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpus: list.length,
    availableParallelism: availableParallelism(),
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    loadAvg: loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    v8: process.versions.v8,
    platform: `${platform()} ${release()} ${arch()}`,
    tmpdir: tmpdir(),
    tmpFilesystem: tmpFilesystem(),
    versions,
    git: gitInfo(),
  }
}

/** The machine as a few lines of text. */
export function formatMachine(m: MachineInfo): string {
  return [
    `machine: ${m.cpus} × ${m.cpuModel} (available parallelism ${m.availableParallelism}), ` +
      `${m.totalMemGiB} GiB RAM (${m.freeMemGiB} free)`,
    `load average at start: ${m.loadAvg.join(' ')}`,
    `runtime: node ${m.node} (V8 ${m.v8}), ${m.platform}`,
    `storage: ${m.tmpdir} (${m.tmpFilesystem})`,
    `code: commit ${m.git.commit}${m.git.srcDirty ? ' + uncommitted changes in src/' : ''}`,
    `versions: ${Object.entries(m.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  ].join('\n')
}

/** Computes the ratios whose operands were both measured. */
export function computeRatios(defs: readonly RatioDef[], results: readonly BenchResult[]): RatioResult[] {
  const find = (r: { scenario: string; metric: string }): BenchResult | undefined =>
    results.find((x) => x.scenario === r.scenario && x.metric === r.metric)
  const out: RatioResult[] = []
  for (const d of defs) {
    const a = find(d.numerator)
    const b = find(d.denominator)
    if (a === undefined || b === undefined || b.value === 0) continue
    out.push({
      name: d.name,
      value: a.value / b.value,
      numerator: `${d.numerator.scenario} ${d.numerator.metric}`,
      denominator: `${d.denominator.scenario} ${d.denominator.metric}`,
      ...(d.note === undefined ? {} : { note: d.note }),
    })
  }
  return out
}

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  const [head, ...body] = rows
  return [line(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)]
}

/** The results table (grouped), then the ratios, as Markdown-friendly fixed-width text. */
export function formatResults(results: readonly BenchResult[], ratios: readonly RatioResult[]): string {
  const rows: string[][] = [['group', 'scenario', 'metric', 'value', 'unit', 'note']]
  let lastGroup = ''
  for (const r of results) {
    rows.push([r.group === lastGroup ? '' : r.group, r.scenario, r.metric, fmt(r.value), r.unit, r.note ?? ''])
    lastGroup = r.group
  }
  const lines = table(rows, new Set([3]))
  if (ratios.length > 0) {
    lines.push(
      '',
      ...table(
        [['ratio', 'value', 'of'], ...ratios.map((r) => [r.name, fmt(r.value), `${r.numerator} / ${r.denominator}`])],
        new Set([1]),
      ),
    )
  }
  return lines.join('\n')
}

/** Writes the results JSON (creating its directory). */
export async function writeJson(
  path: string,
  data: {
    machine: MachineInfo
    loadAvgAtEnd: readonly number[]
    args: readonly string[]
    quick: boolean
    startedAt: string
    durationS: number
    timings: readonly { scenario: string; seconds: number; loadAvg1AtEnd: number }[]
    results: readonly BenchResult[]
    ratios: readonly RatioResult[]
  },
): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, JSON.stringify(data, null, 2) + '\n')
}
