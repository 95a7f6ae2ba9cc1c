/**
 * Restore in process, on real LevelDB: what the e2e tests do not reach cheaply. Fork proofs and
 * withheld records survive a backup and restore (the fork is joined again through the guard),
 * consumer cursors come back, a restore with the node's key marks the directory RECOVERING with
 * the own entries it holds, and a forged fork record is refused with nothing written.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { encodeRuns } from '../../src/core/update-codec.js'
import { backupDataDir } from '../../src/cli/commands/backup.js'
import { restoreBackup } from '../../src/cli/commands/restore.js'
import { DurableConsumer } from '../../src/log/consumer.js'
import { openLog } from '../../src/log/open-log.js'
import { EQUIVOCATOR, version } from '../helpers/forks.js'
import { runOf, tamperSignature } from '../helpers/keys.js'
import { tempDir } from '../helpers/tmp.js'

const QUIET = {
  stdout: { write: () => true, once: () => undefined },
  stderr: { write: () => true, once: () => undefined },
  stdin: Readable.from([]),
  env: {},
}

/** A stopped node holding 3 own entries, 5 of a sled forked at 2, and a consumer. */
async function forkedDir(): Promise<string> {
  const dir = await tempDir()
  const log = await openLog(dir)
  try {
    await log.appendBatch([0, 1, 2].map((i) => ({ type: 'own', payload: i })))
    const honest = [0, 1, 2, 3, 4].map((seq) => version(seq, 0))
    expect((await log.applyUpdate(encodeRuns([runOf(EQUIVOCATOR, 0, honest)]))).ok).toBe(true)
    const other = await log.applyUpdate(encodeRuns([runOf(EQUIVOCATOR, 2, [version(2, 1)])]))
    expect(other).toMatchObject({ ok: true, equivocations: 1 })
    expect(log.forkProof(EQUIVOCATOR.sled)?.seq).toBe(2)
    await DurableConsumer.restore(log, 'audit', { [log.sled]: 1, [EQUIVOCATOR.sled]: 1 })
  } finally {
    await log.close()
  }
  return dir
}

describe('restore', () => {
  it('brings back fork proofs, withheld records and consumer cursors; with the key it marks RECOVERING', async () => {
    const dir = await forkedDir()
    const file = join(await tempDir(), 'f.backup')
    const made = await backupDataDir(dir, file, QUIET)
    expect(made).toMatchObject({ records: 8, sleds: 2, forks: 1, consumers: 1 })
    const target = join(await tempDir(), 'r')
    const r = await restoreBackup({
      input: Readable.from(await readFile(file)),
      dir: target,
      keyFile: join(dir, 'sled.key'),
    })
    expect(r).toMatchObject({ records: 8, forks: 1, consumers: 1, recovering: true, ownEntries: 3 })
    // A sound store that holds proof of another sled's fork.
    expect(r.verify.problems).toEqual([])
    expect(r.verify.forks).toEqual([{ sled: EQUIVOCATOR.sled, seq: 2 }])
    expect(JSON.parse(await readFile(join(target, 'RECOVERING'), 'utf8'))).toMatchObject({ need: 3 })

    const [orig, copy] = [await openLog(dir), await openLog(target)]
    try {
      expect(copy.sled).toBe(orig.sled)
      expect(copy.forkProof(EQUIVOCATOR.sled)).toEqual(orig.forkProof(EQUIVOCATOR.sled))
      expect(copy.held(EQUIVOCATOR.sled)).toBe(5)
      expect(copy.heldRecords(EQUIVOCATOR.sled, 0, 5)).toEqual(orig.heldRecords(EQUIVOCATOR.sled, 0, 5))
      expect(copy.heldRecords(orig.sled, 0, 3)).toEqual(orig.heldRecords(orig.sled, 0, 3))
      expect(await DurableConsumer.cursors(copy)).toEqual(await DurableConsumer.cursors(orig))
    } finally {
      await orig.close()
      await copy.close()
    }
  })

  it('refuses a forged fork record (checksum recomputed), writing nothing', async () => {
    const dir = await forkedDir()
    const file = join(await tempDir(), 'f.backup')
    await backupDataDir(dir, file, QUIET)
    const text = await readFile(file, 'utf8')
    const lines = text.split('\n').filter((l) => l !== '')
    const i = lines.findIndex((l) => l.startsWith('{"fork"'))
    const fork = JSON.parse(lines[i] as string)
    const forged = tamperSignature(fork.fork.records[1])
    fork.fork.records = [fork.fork.records[0], forged].sort()
    lines[i] = JSON.stringify(fork)
    const body = `${lines.slice(0, -1).join('\n')}\n`
    const sha = createHash('sha256').update(body).digest('hex')
    const bad = join(await tempDir(), 'bad.backup')
    await writeFile(bad, `${body}{"end":{"records":8,"sha256":"${sha}"}}\n`)
    const target = join(await tempDir(), 'r')
    await expect(restoreBackup({ input: Readable.from(await readFile(bad)), dir: target })).rejects.toMatchObject({
      code: 'UPDATE_BAD_SIGNATURE',
    })
    expect(existsSync(target)).toBe(false)
  })
})
