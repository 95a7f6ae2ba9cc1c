import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '../../src/core/query.js'
import { IngestWriter } from '../../src/ingest/writer.js'
import { openLog } from '../../src/log/open-log.js'
import { ownEntries } from '../helpers/logs.js'
import { prng, testSeed } from '../helpers/seed.js'
import { tempDir } from '../helpers/tmp.js'

const PRODUCER = fileURLToPath(new URL('./fixtures/producer.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Sent {
  readonly lid: number
  readonly queued: boolean
  readonly n: number
}

/** Runs the producer until `killAfterMs` after it is ready, SIGKILLs it, returns what it published. */
async function runAndKill(dir: string, seed: number, round: number, killAfterMs: number): Promise<Sent[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', PRODUCER, dir, String(seed), String(round)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const sent: Sent[] = []
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
  const lines = createInterface({ input: child.stdout })
  const drained = new Promise((r) => lines.once('close', r))
  lines.on('line', (line) => {
    const [kind, lid, queued, n] = line.split(' ')
    if (kind === 'ready') setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    if (kind === 'pub') sent.push({ lid: Number(lid), queued: queued === '1', n: Number(n) })
  })
  const signal = await exited
  if (signal !== 'SIGKILL') throw new Error(`producer exited on its own (${String(signal)}): ${stderr}`)
  await drained
  return sent
}

async function recoveredEntries(dir: string): Promise<StoredEntry[]> {
  const log = await openLog(dir)
  try {
    // Recover as a restarted node would: the crashed run's lost lids become sentinels.
    const writer = new IngestWriter({ log, reserveBlock: 64 })
    await writer.start()
    await writer.stop()
    return ownEntries(log)
  } finally {
    await log.close()
  }
}

describe('ingest kill -9', () => {
  it('never hands a lid out twice and accounts for every lid exactly once across crashes', async () => {
    const seed = testSeed('ingest-kill9')
    const rand = prng(seed)
    const dir = await tempDir()
    const byLid = new Map<number, Sent>()
    for (let round = 0; round < 5; round++) {
      const sent = await runAndKill(dir, seed + round, round, 100 + Math.floor(rand() * 300))
      expect(sent.length, `round ${round} published`).toBeGreaterThan(0)
      for (const s of sent) {
        const earlier = byLid.get(s.lid)
        expect(earlier, `lid ${s.lid} handed out to event ${earlier?.n} and again to ${s.n}`).toBeUndefined()
        byLid.set(s.lid, s)
      }
    }
    const entries = await recoveredEntries(dir)
    const events = new Map<number, StoredEntry>()
    const spans: Array<[number, number]> = []
    const ids = new Set<string>()
    for (const e of entries) {
      if (e.kind === 'gap') spans.push([e.from, e.to])
      else if (e.kind === 'event') {
        if (e.id !== undefined) {
          expect(ids.has(e.id), `id ${e.id} stored twice`).toBe(false)
          ids.add(e.id)
        }
        if (e.lid === undefined) continue
        expect(events.has(e.lid), `lid ${e.lid} in two events`).toBe(false)
        events.set(e.lid, e)
        spans.push([e.lid, e.lid])
      }
    }
    spans.sort((a, b) => a[0] - b[0])
    let next = 0
    for (const [from, to] of spans) {
      expect(from, `lids ${next}..${from - 1} accounted nowhere, or lid ${from} twice`).toBe(next)
      next = to + 1
    }
    for (const s of byLid.values()) {
      // Lids below `next` are covered exactly once, so a lid in no event is in one sentinel:
      // dropped, deduplicated, or queued and lost in a crash.
      expect(s.lid, `handed-out lid ${s.lid} beyond the log's accounting`).toBeLessThan(next)
      const e = events.get(s.lid)
      if (e !== undefined) {
        expect(s.queued, `dropped lid ${s.lid} is in the log`).toBe(true)
        expect((e.kind === 'event' ? e.payload : null) as { n: number }).toEqual({ n: s.n })
      }
    }
  }, 120_000)
})
