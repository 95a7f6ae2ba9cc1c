/**
 * Group "yjs-baseline": the same records pushed into a plain Y.Array, without signing, guard or
 * persistence: what Yjs alone costs, with and without sledlog's linear `ContentAny` merge. Each
 * case runs in a fresh process (scripts/bench/yjs-child.ts) because installLinearMerge patches
 * the yjs module for the whole process.
 */
import { benchScript, runChild, type BenchContext, type BenchGroup } from './harness.js'

interface ChildResult {
  readonly entries: number
  readonly decades: ReadonlyArray<{ to: number; pushesPerS: number; seconds: number; cpuUsPerPush: number }>
  readonly totalSeconds: number
  readonly heapBytes: number
  readonly updateBytes: number
  readonly structs: number
  readonly avgRecordChars: number
}

const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n))

async function runCase(
  ctx: BenchContext,
  scenario: string,
  mode: 'linear' | 'plain',
  batch: number,
  milestones: readonly number[],
): Promise<void> {
  ctx.progress(`${scenario}: ${mode}, batch ${batch}, up to ${label(milestones[milestones.length - 1] ?? 0)}`)
  const { result } = await runChild<ChildResult>(benchScript('yjs-child.ts'), [
    mode,
    String(batch),
    milestones.join(','),
  ])
  let from = 0
  for (const d of result.decades) {
    ctx.record(
      scenario,
      `push/s ${label(from)}→${label(d.to)}`,
      d.pushesPerS,
      'entries/s',
      `CPU ${d.cpuUsPerPush.toFixed(1)} µs/push`,
    )
    from = d.to
  }
  // Compare the last step with the second one when there are three or more: the first 10k
  // pushes into a fresh doc run while V8 is still sizing its young generation.
  const ref = result.decades.length >= 3 ? 1 : 0
  const first = result.decades[ref]
  const last = result.decades[result.decades.length - 1]
  const stepName = (i: number): string =>
    `${label(i === 0 ? 0 : (result.decades[i - 1]?.to ?? 0))}→${label(result.decades[i]?.to ?? 0)}`
  ctx.record(
    scenario,
    'push/s overall',
    result.entries / result.totalSeconds,
    'entries/s',
    `0→${label(result.entries)}`,
  )
  ctx.record(scenario, `total to ${label(result.entries)}`, result.totalSeconds, 's')
  if (first !== undefined && last !== undefined && result.decades.length > 1) {
    ctx.record(
      scenario,
      'push/s last/ref',
      last.pushesPerS / first.pushesPerS,
      'ratio',
      `${stepName(result.decades.length - 1)} vs ${stepName(ref)}; 1.0 = linear`,
    )
  }
  ctx.record(
    scenario,
    'heap per entry',
    result.heapBytes / result.entries,
    'B',
    `after gc; record ~${Math.round(result.avgRecordChars)} chars, ${result.structs} structs`,
  )
  ctx.record(
    scenario,
    'doc update per entry',
    result.updateBytes / result.entries,
    'B',
    `encodeStateAsUpdate: ${(result.updateBytes / 2 ** 20).toFixed(1)} MiB`,
  )
}

export const yjsBaselineGroup: BenchGroup = {
  name: 'yjs-baseline',
  description: 'plain Y.Array push of the same records: no signing, no persistence (fresh process each)',
  scenarios: [
    {
      name: 'linear-single',
      // 10k→20k is also measured for plain-single: the linear-merge effect at equal sizes.
      run: (ctx) =>
        runCase(
          ctx,
          'yjs/linear-single',
          'linear',
          1,
          ctx.quick ? [10_000, 20_000, 100_000] : [10_000, 20_000, 100_000, 1_000_000],
        ),
    },
    {
      name: 'linear-batch-1000',
      run: (ctx) =>
        runCase(
          ctx,
          'yjs/linear-batch-1000',
          'linear',
          1000,
          ctx.quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000],
        ),
    },
    {
      name: 'plain-single',
      // Unpatched yjs is O(n²) for single pushes: keep it small.
      run: (ctx) =>
        runCase(ctx, 'yjs/plain-single', 'plain', 1, ctx.quick ? [10_000, 20_000] : [10_000, 20_000, 50_000]),
    },
  ],
  ratios: [
    {
      name: 'yjs linear / plain push/s, 10k→20k',
      numerator: { scenario: 'yjs/linear-single', metric: 'push/s 10k→20k' },
      denominator: { scenario: 'yjs/plain-single', metric: 'push/s 10k→20k' },
      note: 'the linear-merge effect at equal sizes',
    },
    {
      name: 'yjs linear 100k→1M / plain 20k→50k push/s',
      numerator: { scenario: 'yjs/linear-single', metric: 'push/s 100k→1M' },
      denominator: { scenario: 'yjs/plain-single', metric: 'push/s 20k→50k' },
      note: 'plain Yjs at 50k is already slower than linear at 1M',
    },
  ],
}
