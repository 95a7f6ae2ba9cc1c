/**
 * Moving a stopped node to a successor key (src/node/key-rotation.ts, PROTOCOL.md §7.1) on a real
 * LevelDB data directory: what a rotation leaves behind, that a run interrupted at any step
 * resumes without a second successor, that the node refuses to start meanwhile, and the CLI's
 * rotate-key, recover --new-key and revoke-key --data.
 */
import { existsSync } from 'node:fs'
import { rm, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { openLog } from '../../src/log/open-log.js'
import { RECOVERING_FILE } from '../../src/node/node.js'
import { rotateKey } from '../../src/node/key-rotation.js'
import {
  keyPath,
  loadIdentity,
  loadKeyFile,
  pendingKeyPath,
  retiredKeyPath,
  saveKeyFile,
} from '../../src/store/identity.js'
import { LevelStore, deriveMacKey } from '../../src/store/level-store.js'
import { dbPath } from '../../src/log/open-log.js'
import { runMain } from '../cli/cli-process.js'
import { testKeys } from '../helpers/keys.js'
import { tempDir } from '../helpers/tmp.js'

/** A data directory whose node appended `n` events; returns it and its sled. */
async function nodeDir(n: number): Promise<{ dir: string; sled: SledId }> {
  const dir = await tempDir()
  const log = await openLog(dir)
  for (let i = 0; i < n; i++) await log.append({ type: 'e', payload: i })
  const sled = log.sled
  await log.close()
  return { dir, sled }
}

/** Whether every stored update of `dir` verifies under its current key's MAC. */
async function allTrusted(dir: string): Promise<boolean> {
  const keys = await loadIdentity(dir)
  const store = new LevelStore({ path: dbPath(dir), macKey: deriveMacKey((keys as { seed: Uint8Array }).seed) })
  await store.open()
  let ok = true
  for await (const u of store.updates()) ok &&= u.trusted
  await store.close()
  return ok
}

describe('rotateKey', () => {
  it('makes a successor whose entry 0 is the endorsed succession, keeps the old key, re-seals the store', async () => {
    const { dir, sled: old } = await nodeDir(3)
    const r = await rotateKey(dir, { reason: 'rotation' })
    expect(r).toMatchObject({ predecessor: old, lastSeq: 2, reason: 'rotation', endorsed: true, resumed: false })
    expect((await loadIdentity(dir))?.sled).toBe(r.successor)
    expect(existsSync(pendingKeyPath(dir))).toBe(false)
    expect((await loadKeyFile(retiredKeyPath(dir, old)))?.keys.sled).toBe(old)
    expect((await stat(retiredKeyPath(dir, old))).mode & 0o777).toBe(0o600)
    expect(await allTrusted(dir)).toBe(true)
    const log = await openLog(dir)
    try {
      expect(log.sled).toBe(r.successor)
      expect(log.get(r.successor, 0)).toMatchObject({ kind: 'succession', predecessor: old, lastSeq: 2 })
      expect(log.query({ sled: old }).entries.map((e) => e.retired === true)).toEqual([false, false, false])
      expect(log.retiredAt(old)).toBe(3)
      // The successor appends from seq 1; the old sled's state (own count, lids) does not hold it back.
      expect(await log.append({ type: 'e', payload: 'new' })).toMatchObject({ sled: r.successor, seq: 1 })
      expect(log.status().ownHeadBehind).toBeNull()
    } finally {
      await log.close()
    }
  })

  it('an idempotency id the old key holds is answered with its entry after the rotation', async () => {
    const dir = await tempDir()
    const before = await openLog(dir)
    const [kept] = await before.appendBatch([{ type: 'order', payload: 1, id: 'o-1' }])
    await before.close()
    const r = await rotateKey(dir, { reason: 'rotation' })
    const log = await openLog(dir)
    try {
      const again = await log.appendBatch([
        { type: 'order', payload: 1, id: 'o-1' },
        { type: 'order', payload: 2, id: 'o-2' },
      ])
      expect(again.map((e) => [e.sled, e.seq, e.sig])).toEqual([
        [kept?.sled, 0, kept?.sig],
        [r.successor, 1, expect.any(String)],
      ])
      await expect(log.appendBatch([{ type: 'order', payload: 9, id: 'o-1' }])).rejects.toMatchObject({
        code: 'ENTRY_ID_CONFLICT',
      })
      expect(log.held(r.successor)).toBe(2)
    } finally {
      await log.close()
    }
  })

  it('resumes from its journal after a crash at any step, never making a second successor', async () => {
    const { dir, sled: old } = await nodeDir(2)
    const oldKeys = await loadIdentity(dir)
    const next = testKeys(301)
    // Crash right after the journal was written: the next run finishes with the same key.
    await saveKeyFile(pendingKeyPath(dir), next, { rotation: { predecessor: old, lastSeq: 1, reason: 'rotation' } })
    await expect(openLog(dir)).rejects.toMatchObject({ code: 'KEY_ROTATION_PENDING' })
    // An operator who asks for another lastSeq than the interrupted run decided is told, not ignored.
    await expect(rotateKey(dir, { reason: 'recovery', lastSeq: 0 })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      details: { lastSeq: 1 },
    })
    expect((await loadKeyFile(pendingKeyPath(dir)))?.keys.sled).toBe(next.sled)
    const first = await rotateKey(dir, { reason: 'rotation', seed: testKeys(302).seed })
    expect(first).toMatchObject({ successor: next.sled, lastSeq: 1, resumed: true })
    // Crash between appending the succession and promoting the key: put the directory back in
    // that state (old key in place, journal present, no retired key file) and run again.
    await unlink(keyPath(dir))
    await saveKeyFile(keyPath(dir), oldKeys as never)
    await saveKeyFile(pendingKeyPath(dir), next, { rotation: { predecessor: old, lastSeq: 1, reason: 'rotation' } })
    await rm(retiredKeyPath(dir, old))
    const second = await rotateKey(dir, { reason: 'rotation' })
    expect(second).toMatchObject({ successor: next.sled, resumed: true })
    const log = await openLog(dir)
    try {
      expect(log.held(next.sled)).toBe(1)
      expect(log.status().succession).toMatchObject({ successions: 1, chain: [{ sled: next.sled, predecessor: old }] })
    } finally {
      await log.close()
    }
  })

  it('refuses to endorse a second successor with a key restored after it moved on (rotate or recover)', async () => {
    const { dir, sled: old } = await nodeDir(2)
    const oldKeys = await loadIdentity(dir)
    const r = await rotateKey(dir, { reason: 'rotation' })
    // The operator restores the backup of the first key over the directory that moved on.
    await unlink(keyPath(dir))
    await saveKeyFile(keyPath(dir), oldKeys as never)
    for (const reason of ['rotation', 'recovery'] as const) {
      const err = await rotateKey(dir, { reason }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'SLED_RETIRED', details: { predecessor: old, successor: r.successor } })
      expect(String((err as Error).message)).toContain(`--predecessor ${r.successor}`)
      expect(existsSync(pendingKeyPath(dir))).toBe(false)
    }
  })

  it('refuses a planned rotation of a node still recovering its own entries', async () => {
    const { dir } = await nodeDir(1)
    await writeFile(join(dir, RECOVERING_FILE), '')
    await expect(rotateKey(dir, { reason: 'rotation' })).rejects.toThrow(/recover --new-key/)
    expect(existsSync(pendingKeyPath(dir))).toBe(false)
  })
})

describe('the CLI', () => {
  it('recover --new-key after a lost disk: endorsed by the restored key, vouching for --last-seq', async () => {
    const { dir, sled: old } = await nodeDir(0)
    await rm(dbPath(dir), { recursive: true })
    await writeFile(join(dir, RECOVERING_FILE), '')
    const r = await runMain(['recover', '--new-key', '--data', dir, '--last-seq', '5'])
    expect(r.code, r.stderr).toBe(0)
    const successor = r.stdout.trim()
    expect(r.stderr).toMatch(/recovery .* vouching for its seqs 0\.\.5; endorsed/)
    expect(existsSync(join(dir, RECOVERING_FILE))).toBe(false)
    const log = await openLog(dir)
    try {
      expect(log.get(successor as never, 0)).toMatchObject({ reason: 'recovery', lastSeq: 5, predecessor: old })
      expect(log.retiredAt(old)).toBe(6)
    } finally {
      await log.close()
    }
    expect((await runMain(['recover', '--data', dir])).code).toBe(2) // --new-key is required
  })

  it('recover --new-key without the old key: --predecessor, unendorsed, retires nothing', async () => {
    const dir = await tempDir()
    const lost = testKeys(303).sled
    expect((await runMain(['recover', '--new-key', '--data', dir])).stderr).toMatch(/--predecessor/)
    const r = await runMain(['recover', '--new-key', '--data', dir, '--predecessor', lost, '--last-seq=-1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/vouching for none of its seqs; NOT endorsed/)
    const log = await openLog(dir)
    try {
      expect(log.get(r.stdout.trim() as never, 0)).toMatchObject({ predecessor: lost, lastSeq: -1, endorsement: null })
      expect(log.retiredAt(lost as never)).toBeUndefined()
    } finally {
      await log.close()
    }
  })

  it('rotate-key then revoke-key --data with the retired key; admin revocations need an admin key file', async () => {
    const { dir, sled: old } = await nodeDir(4)
    const rotated = await runMain(['rotate-key', '--data', dir])
    expect(rotated.code, rotated.stderr).toBe(0)
    // The rotated directory verifies: every signature, endorsement included.
    const verified = await runMain(['verify', '--data', dir])
    expect(verified.code, verified.stdout + verified.stderr).toBe(0)
    const self = await runMain(['revoke-key', '--data', dir, '--sled', old, '--from-seq', '1'])
    expect(self.code, self.stderr).toBe(0)
    expect(JSON.parse(self.stdout)).toMatchObject({ kind: 'revocation', target: old, fromSeq: 1, authority: 'self' })
    const stranger = testKeys(304).sled
    const noKey = await runMain(['revoke-key', '--data', dir, '--sled', stranger, '--from-seq', '0'])
    expect(noKey.code).toBe(2)
    expect(noKey.stderr).toMatch(/needs .*own key/)
    const adminDir = await tempDir()
    const adminId = (await runMain(['keygen', '--data', adminDir])).stdout.trim()
    const admin = await runMain([
      'revoke-key',
      '--data',
      dir,
      '--sled',
      stranger,
      '--from-seq',
      '0',
      '--admin-key-file',
      keyPath(adminDir),
    ])
    expect(admin.code, admin.stderr).toBe(0)
    expect(JSON.parse(admin.stdout)).toMatchObject({ authority: 'admin', admin: adminId })
    const log = await openLog(dir)
    try {
      expect(log.retiredAt(old)).toBe(1)
      expect(log.retiredAt(stranger as never)).toBeUndefined() // no admin key configured here
    } finally {
      await log.close()
    }
    const withAdmin = await openLog(dir, { adminKeys: [adminId as never] })
    try {
      expect(withAdmin.retiredAt(stranger as never)).toBe(0)
    } finally {
      await withAdmin.close()
    }
  })
})
