/**
 * Turns among step-1 answers (src/sync/answer-scheduler.ts), with scripted jobs: how many run
 * at once, one per remote sled, the per-turn byte slice, and peers that never read giving their
 * turn up.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { AnswerScheduler, type AnswerJob, type PumpResult } from '../../src/sync/answer-scheduler.js'
import { until } from '../helpers/sync-node.js'

/** A job that sends `total` bytes and may be told to block (a peer that stops reading). */
class FakeAnswer implements AnswerJob {
  sent = 0
  pumps = 0
  blocked = false
  done = false
  readonly budgets: number[] = []
  constructor(
    readonly key: string,
    readonly total: number,
    readonly log: string[],
    readonly name = key,
  ) {}
  pump(budget: number): { result: PumpResult; sent: number } {
    this.pumps++
    this.budgets.push(budget)
    this.log.push(this.name)
    if (this.blocked) return { result: 'blocked', sent: 0 }
    const n = Math.min(budget, this.total - this.sent)
    this.sent += n
    if (this.sent >= this.total) {
      this.done = true
      return { result: 'done', sent: n }
    }
    return { result: 'more', sent: n }
  }
}

function scheduler(opts: ConstructorParameters<typeof AnswerScheduler>[0]): AnswerScheduler {
  const s = new AnswerScheduler({ pollMs: 5, ...opts })
  onTestFinished(() => s.stop())
  return s
}

describe('AnswerScheduler', () => {
  it('pumps at most maxActive answers per turn, shares the slice among them, and serves everyone', async () => {
    const s = scheduler({ maxActive: 2, sliceBytes: 1000 })
    const log: string[] = []
    const jobs = ['a', 'b', 'c', 'd'].map((k) => new FakeAnswer(k, 2000, log))
    for (const j of jobs) s.submit(j)
    expect(s.stats()).toMatchObject({ active: 0, waiting: 4 }) // nothing runs in the submitting turn
    await until(() => jobs.every((j) => j.done), 'every answer done', 5000)
    // 2 at a time, 500 bytes each per turn: a and b first, c and d only after them.
    expect(jobs[0]?.budgets.every((b) => b === 500)).toBe(true)
    expect(log.slice(0, 8)).toEqual(['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'])
    expect(log.indexOf('c')).toBeGreaterThan(log.lastIndexOf('a'))
    expect(s.stats()).toMatchObject({ active: 0, waiting: 0 })
  })

  it('streams one answer per remote sled at a time (a second link of the same peer waits)', async () => {
    const s = scheduler({ maxActive: 4, sliceBytes: 100 })
    const log: string[] = []
    const first = new FakeAnswer('same', 300, log, 'first')
    const second = new FakeAnswer('same', 300, log, 'second')
    const other = new FakeAnswer('other', 300, log)
    s.submit(first)
    s.submit(second)
    s.submit(other)
    await until(() => [first, second, other].every((j) => j.done), 'done', 5000)
    // The second answer to 'same' starts only once the first is done; 'other' runs beside it.
    expect(log.indexOf('second')).toBeGreaterThan(log.lastIndexOf('first'))
    expect(log.indexOf('other')).toBeLessThan(log.lastIndexOf('first'))
  })

  it('a peer that stops reading gives its turn up to a waiting answer, and resumes later', async () => {
    const s = scheduler({ maxActive: 1, sliceBytes: 100, suspendAfterMs: 30 })
    const log: string[] = []
    const stuck = new FakeAnswer('stuck', 1000, log)
    const honest = new FakeAnswer('honest', 500, log)
    stuck.blocked = true
    s.submit(stuck)
    s.submit(honest)
    await until(() => honest.done, 'the honest answer despite a peer that never reads', 3000)
    expect(s.stats().suspended).toBeGreaterThanOrEqual(1)
    expect(stuck.done).toBe(false)
    stuck.blocked = false
    await until(() => stuck.done, 'the stuck answer once its peer reads again', 3000)
  })

  it('a long answer passes its turn on after turnBytes while others wait', async () => {
    const s = scheduler({ maxActive: 1, sliceBytes: 100, turnBytes: 300 })
    const log: string[] = []
    const long = new FakeAnswer('long', 10_000, log)
    const short = new FakeAnswer('short', 100, log)
    s.submit(long)
    s.submit(short)
    await until(() => short.done && long.done, 'both answers', 5000)
    // The short one ran after the long one's first 300 bytes, not after all 10,000.
    expect(log.indexOf('short')).toBe(3)
    expect(log.lastIndexOf('long')).toBeGreaterThan(log.indexOf('short'))
  })

  it('cancel drops a job wherever it is; stop drops everything', async () => {
    const s = scheduler({ maxActive: 1, sliceBytes: 10 })
    const log: string[] = []
    const a = new FakeAnswer('a', 1_000_000, log)
    const b = new FakeAnswer('b', 10, log)
    s.submit(a)
    s.submit(b)
    s.cancel(b)
    await until(() => a.pumps > 2, 'a pumped')
    s.cancel(a)
    const pumps = a.pumps
    await new Promise((r) => setTimeout(r, 30))
    expect(a.pumps).toBe(pumps)
    expect(b.pumps).toBe(0)
    s.submit(b)
    s.stop()
    s.submit(b)
    await new Promise((r) => setTimeout(r, 30))
    expect(b.pumps).toBe(0)
  })
})
