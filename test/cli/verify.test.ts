/**
 * `sledlog verify` as a user runs it (a real process): a fork is evidence the store holds, not
 * damage, and has its own exit code; this node's own fork has another; damage wins over both.
 */
import { describe, expect, it } from 'vitest'
import { openLog } from '../../src/log/open-log.js'
import { applyAll, chainUpdates, EQUIVOCATOR as S, versionUpdate } from '../helpers/forks.js'
import { cloneIdentity, corruptUpdate } from '../helpers/logs.js'
import { tempDir } from '../helpers/tmp.js'
import { runCli } from './cli-process.js'

/** A data dir whose node appended two entries and holds `S` forked at seq 1. */
async function forkedDir(): Promise<{ dir: string; sled: string }> {
  const dir = await tempDir()
  const log = await openLog(dir)
  await log.appendBatch([
    { type: 'a', payload: 0 },
    { type: 'a', payload: 1 },
  ])
  await applyAll(log, chainUpdates([0, 0, 0]))
  await applyAll(log, [versionUpdate(1, 1)])
  const sled = log.sled
  await log.close()
  return { dir, sled }
}

describe('sledlog verify exit codes', () => {
  it('3 when the store is sound but holds a fork of another sled; 1 once the store is also damaged', async () => {
    const { dir, sled } = await forkedDir()
    const r = await runCli(['verify', '--data', dir, '--json'])
    expect(r.code, r.stderr).toBe(3)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({
      ok: false,
      exitCode: 3,
      problems: [],
      forks: [{ sled: S.sled, seq: 1 }],
      ownFork: null,
      // Every record held was checked, the ones withheld past the fork too.
      entries: 5,
      sleds: { [sled]: { entries: 2 }, [S.sled]: { entries: 3, seqs: [0, 2] } },
    })
    const text = await runCli(['verify', '--data', dir])
    expect(text.code).toBe(3)
    expect(text.stdout).toContain('OK: no problems found (the store is sound)')
    expect(text.stdout).toMatch(/FORKED SLEDS \(1\): .*\n {2}- [0-9a-f]{64} at seq 1\n/)

    // Flip one byte inside the last stored update: damage.
    await corruptUpdate(dir, -1)
    const damaged = await runCli(['verify', '--data', dir, '--json'])
    expect(damaged.code).toBe(1)
    expect(JSON.parse(damaged.stdout)).toMatchObject({ exitCode: 1, forks: [{ sled: S.sled, seq: 1 }] })
  })

  it("4 when this node's own sled is forked (it re-signed a seq), reported as such", async () => {
    const dir = await tempDir()
    const log = await openLog(dir)
    await log.appendBatch([
      { type: 'a', payload: 0 },
      { type: 'a', payload: 1 },
    ])
    // The same key, restored elsewhere from a backup, signed its own seq 0 again.
    const twin = await openLog(await cloneIdentity(dir))
    await twin.append({ type: 'restored', payload: 'again' })
    await applyAll(log, twin.updatesSince(new Map(), 1 << 20))
    await Promise.all([log.close(), twin.close()])
    const r = await runCli(['verify', '--data', dir, '--json'])
    expect(r.code, r.stderr).toBe(4)
    expect(JSON.parse(r.stdout)).toMatchObject({ exitCode: 4, ownFork: 0, problems: [] })
    const text = await runCli(['verify', '--data', dir])
    expect(text.code).toBe(4)
    expect(text.stdout).toMatch(/THIS NODE'S SLED IS FORKED at seq 0: .*SLED_FORKED/)
    expect(text.stdout).toMatch(/at seq 0 {2}\(this node\)/)
  })

  it('documents the codes in --help', async () => {
    const r = await runCli(['verify', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/3 the store\s+is sound but another sled equivocated/)
    expect(r.stdout).toMatch(/4 the store is sound but this node's own sled is\s+forked/)
  })
})
