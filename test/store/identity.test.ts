import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { isSledId } from '../../src/core/ids.js'
import { isSledlogError } from '../../src/errors.js'
import { keyPath, loadIdentity, loadOrCreateIdentity } from '../../src/store/identity.js'
import { tempDir } from '../helpers/tmp.js'

describe('identity', () => {
  it('creates a key with mode 0600 and loads the same identity again', async () => {
    const dir = await tempDir()
    const a = await loadOrCreateIdentity(dir)
    expect(isSledId(a.sled)).toBe(true)
    expect((await stat(keyPath(dir))).mode & 0o777).toBe(0o600)
    const b = await loadOrCreateIdentity(dir)
    expect(b.sled).toBe(a.sled)
    expect(Buffer.from(b.seed).equals(Buffer.from(a.seed))).toBe(true)
  })

  it('returns undefined when there is no key', async () => {
    expect(await loadIdentity(await tempDir())).toBeUndefined()
  })

  it('concurrent creators agree on one key', async () => {
    const dir = await tempDir()
    const keys = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateIdentity(dir)))
    expect(new Set(keys.map((k) => k.sled)).size).toBe(1)
  })

  it.each([0o644, 0o640, 0o604, 0o660])('refuses a key file with mode %s', async (mode) => {
    const dir = await tempDir()
    await loadOrCreateIdentity(dir)
    await chmod(keyPath(dir), mode)
    const err = await loadIdentity(dir).catch((e: unknown) => e)
    expect(isSledlogError(err, 'KEY_FILE_PERMISSIONS')).toBe(true)
    expect(String((err as Error).message)).toMatch(/chmod 600/)
  })

  it.each([
    ['not JSON', 'garbage{'],
    ['wrong kind', JSON.stringify({ kind: 'other', v: 1, seed: '00'.repeat(32), sled: 'x' })],
    ['short seed', JSON.stringify({ kind: 'sledlog-key', v: 1, seed: '00', sled: 'x' })],
    ['empty', ''],
  ])('refuses a corrupt key file (%s)', async (_name, body) => {
    const dir = await tempDir()
    await loadOrCreateIdentity(dir)
    await writeFile(keyPath(dir), body, { mode: 0o600 })
    const err = await loadIdentity(dir).catch((e: unknown) => e)
    expect(isSledlogError(err, 'KEY_FILE_CORRUPT')).toBe(true)
  })

  it('refuses a key file whose seed does not give its recorded sled id', async () => {
    const dir = await tempDir()
    await loadOrCreateIdentity(dir)
    const parsed = JSON.parse(await readFile(keyPath(dir), 'utf8')) as { sled: string }
    parsed.sled = 'ab'.repeat(32)
    await writeFile(keyPath(dir), JSON.stringify(parsed))
    const err = await loadIdentity(dir).catch((e: unknown) => e)
    expect(isSledlogError(err, 'KEY_FILE_CORRUPT')).toBe(true)
  })
})
