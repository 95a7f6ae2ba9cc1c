/**
 * The harness's key succession faults (issue 16, "a sled never signs two histories") on small
 * real clusters of node processes: a key rotated and a retired key revoked while a node is cut
 * off, and a disk lost while it holds writes no peer has. Each run must hold every invariant,
 * and the last one proves the checker fails a node that signs its old seqs again. Seeds are
 * printed; a schedule with the variant a test needs is searched from the test seed on.
 */
import { describe, expect, it } from 'vitest'
import { formatReport } from '../../src/harness/report.js'
import { runHarness, type HarnessOptions, type HarnessResult } from '../../src/harness/run.js'
import { makeSchedule, type FaultAction, type FaultKind } from '../../src/harness/schedule.js'
import { testSeed } from '../helpers/seed.js'

type Wipe = Extract<FaultAction, { op: 'wipe-holding-acks' }>

/** The first seed from `start` whose schedule has every variant `wanted` asks for. */
function seedWith(start: number, opts: Omit<HarnessOptions, 'seed' | 'rate'>, wanted: (a: FaultAction[]) => boolean) {
  for (let seed = start; seed < start + 1000; seed++) {
    const s = makeSchedule({ seed, durationMs: opts.durationMs, nodes: opts.nodes, faults: opts.faults })
    if (wanted(s.actions.map((a) => a.action))) return seed
  }
  throw new Error('no seed with the wanted schedule')
}

async function run(name: string, opts: Omit<HarnessOptions, 'seed' | 'rate'>, wanted: (a: FaultAction[]) => boolean) {
  const seed = seedWith(testSeed(name), opts, wanted)
  console.log(`[seed] ${name}: running seed ${seed}`)
  const progress: string[] = []
  const result = await runHarness({ ...opts, seed, rate: 8, progress: (line) => progress.push(line) })
  console.log(formatReport(result))
  return { result, progress }
}

function explain(r: { result: HarnessResult; progress: string[] }): string {
  return `progress:\n${r.progress.join('\n')}\n\n${r.result.nodeLogs ?? ''}`
}

const cutOff = (actions: FaultAction[]): Wipe[] =>
  actions.filter((a): a is Wipe => a.op === 'wipe-holding-acks' && a.cutOff)

describe('harness: key succession under partitions (issue 16)', () => {
  it('a key rotated and a retired key revoked while a node is cut off: reads, flags and chains converge', async () => {
    const faults: FaultKind[] = ['rotate-partitioned', 'revoke-partitioned']
    const r = await run('harness rotate and revoke', { nodes: 3, durationMs: 20_000, faults }, (actions) =>
      faults.every((k) => actions.some((a) => a.op === k)),
    )
    if (!r.result.ok) console.log(explain(r))
    expect(r.result.violations).toEqual([])
    const f = r.result.figures
    expect(f.succession.rotations).toBeGreaterThanOrEqual(1)
    expect(f.succession.successors).toBeGreaterThanOrEqual(1)
    expect(f.succession.revocations.self + f.succession.revocations.admin).toBeGreaterThanOrEqual(1)
    // The revocation reached back into the retired sled's entries: flags that had to converge.
    expect(f.succession.retiredSleds).toBeGreaterThanOrEqual(1)
    expect(f.succession.retiredEntries).toBeGreaterThan(0)
    expect(f.final).toMatchObject({ lost: 0, diverged: 0, resigned: 0, gaps: 0, duplicates: 0 })
  }, 90_000)

  it('a disk lost holding writes: acks=0 ones lost with it (counted), acks=N kept, a successor', async () => {
    const faults: FaultKind[] = ['wipe-holding-acks']
    const r = await run('harness wipe holding acks', { nodes: 3, durationMs: 20_000, faults }, (actions) => {
      const wipes = actions.filter((a): a is Wipe => a.op === 'wipe-holding-acks')
      return wipes.some((w) => w.cutOff) && wipes.some((w) => !w.cutOff)
    })
    if (!r.result.ok) console.log(explain(r))
    expect(r.result.violations).toEqual([])
    const f = r.result.figures
    const h = f.succession.holding
    // Cut off: acks=0 acknowledged, acks=N refused or timed out, never acknowledged (a violation otherwise).
    expect(h.zero).toBeGreaterThan(0)
    expect(h.refused + h.timeouts).toBeGreaterThan(0)
    // Linked: acks=N acknowledged by its peers, and present everywhere at the end (lost is 0).
    expect(h.acked).toBeGreaterThan(0)
    expect(f.final.lostWithDisk).toBeGreaterThan(0)
    expect(f.final).toMatchObject({ lost: 0, diverged: 0, resigned: 0 })
    // Each wiped node moved to a successor key.
    expect(f.succession.successors).toBeGreaterThanOrEqual(2)
  }, 120_000)

  it('the checker fails a node that appends under its old key after a lost disk (--recovery-mode resume)', async () => {
    const r = await run(
      'harness resume re-signs',
      { nodes: 3, durationMs: 12_000, faults: ['wipe-holding-acks'], recoveryMode: 'resume', convergeTimeoutMs: 5000 },
      (actions) => cutOff(actions).length > 0,
    )
    expect(r.result.ok).toBe(false)
    expect(r.result.figures.final.resigned).toBeGreaterThan(0)
    expect(r.result.violations.map((v) => v.text).join('\n')).toMatch(/was signed twice: .*\(a re-signed seq\)/)
    expect(r.result.replay).toContain('--recovery-mode resume')
  }, 90_000)
})
