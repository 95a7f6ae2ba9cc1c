import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { openLog } from '../../src/log/open-log.js'
import { prng, testSeed } from '../helpers/seed.js'
import { tempDir } from '../helpers/tmp.js'

const APPENDER = fileURLToPath(new URL('./fixtures/appender.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Runs the appender until `killAfterMs` after it is ready, SIGKILLs it, returns its acks. */
async function runAndKill(dir: string, seed: number, killAfterMs: number): Promise<Map<number, string>> {
  const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, dir, String(seed)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const acks = new Map<number, string>()
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
  const lines = createInterface({ input: child.stdout })
  const drained = new Promise((r) => lines.once('close', r))
  lines.on('line', (line) => {
    const [kind, seq, sig] = line.split(' ')
    if (kind === 'ready') setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    if (kind === 'ack') acks.set(Number(seq), sig as string)
  })
  const signal = await exited
  if (signal !== 'SIGKILL') throw new Error(`appender exited on its own (${String(signal)}): ${stderr}`)
  // Drain lines already received from the pipe.
  await drained
  return acks
}

describe('kill -9', () => {
  it('loses no acknowledged append and never reuses a seq', async () => {
    const seed = testSeed('kill9')
    const rand = prng(seed)
    const dir = await tempDir()
    const acked = new Map<number, string>()
    for (let round = 0; round < 6; round++) {
      const acks = await runAndKill(dir, seed + round, 100 + Math.floor(rand() * 400))
      for (const [seq, sig] of acks) {
        const earlier = acked.get(seq)
        // A seq acknowledged twice with different signatures would be a reused seq.
        if (earlier !== undefined) expect(sig, `seq ${seq} reused in round ${round}`).toBe(earlier)
        acked.set(seq, sig)
      }
      expect(acks.size, `round ${round} acknowledged appends`).toBeGreaterThan(0)
      const log = await openLog(dir)
      try {
        const st = log.status()
        expect(st.rejected.total).toBe(0)
        expect(st.ownHeadBehind).toBeNull()
        const head = st.heads[log.sled] ?? -1
        const entries = log.query({ limit: 10_000, sled: log.sled }).entries
        const all = [...entries]
        let page = log.query({ limit: 10_000, sled: log.sled })
        while (page.next !== null) {
          page = log.query({ limit: 10_000, sled: log.sled, after: page.next })
          all.push(...page.entries)
        }
        expect(all.map((e) => e.seq)).toEqual(Array.from({ length: head + 1 }, (_, i) => i))
        for (const [seq, sig] of acked) expect(all[seq]?.sig, `acked seq ${seq} after round ${round}`).toBe(sig)
      } finally {
        await log.close()
      }
    }
  }, 120_000)
})
