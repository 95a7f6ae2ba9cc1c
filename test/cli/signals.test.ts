/**
 * A burst of stop signals is one request to stop: `timeout(1)` sends SIGTERM to the node and then
 * to its whole process group, so the node gets two within milliseconds and must still drain its
 * queued ingest events. Only a signal later than the repeat window forces an exit.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SIGNAL_REPEAT_WINDOW_MS, StopSignals } from '../../src/cli/signals.js'
import { tempDir } from '../helpers/tmp.js'
import { ndjson, queueIngest, runMain, startNode } from './cli-process.js'

describe('StopSignals', () => {
  it('stops on the first signal, takes repeats within the window as the same, forces after it', () => {
    const s = new StopSignals()
    expect(s.stopping).toBe(false)
    expect(s.receive(10_000)).toBe('stop')
    expect(s.stopping).toBe(true)
    expect(s.receive(10_000)).toBe('repeat')
    expect(s.receive(10_000 + SIGNAL_REPEAT_WINDOW_MS)).toBe('repeat')
    expect(s.receive(10_000 + SIGNAL_REPEAT_WINDOW_MS + 1)).toBe('force')
    expect(SIGNAL_REPEAT_WINDOW_MS).toBe(1000) // documented in `sledlog node --help` and the README
  })
})

describe('sledlog node', () => {
  it('drains every queued ingest event when two SIGTERMs arrive within milliseconds', async () => {
    const dir = join(await tempDir(), 'a')
    const node = await startNode(['--data', dir, '--port', '0'])
    // A full bus (10 000 events): the signals arrive while most of it is still queued.
    await queueIngest(node.url, 5)
    // The second signal follows the first as soon as the node has taken it (two signals sent
    // back to back may merge into one in the kernel: that would test nothing).
    node.child.kill('SIGTERM')
    await node.waitForStderr('"shutting down"')
    expect(await node.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const logs = node.logs()
    expect(logs.filter((l) => l.msg === 'shutting down')).toHaveLength(1)
    expect(logs.some((l) => l.msg === 'repeated signal: already shutting down')).toBe(true)
    expect(logs.some((l) => l.level === 'warn' && String(l.msg).includes('exiting now'))).toBe(false)
    const entries = ndjson((await runMain(['read', '--data', dir, '--all'])).stdout)
    expect(entries.filter((e) => e.type === 'ingested')).toHaveLength(10_000)
    expect(entries.filter((e) => e.kind === 'gap')).toEqual([])
  })
})
