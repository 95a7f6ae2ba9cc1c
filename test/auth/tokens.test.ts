/**
 * The API token format, the tokens file and the node's view of it (real files on disk).
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TokenStore } from '../../src/auth/token-store.js'
import {
  hasScope,
  newToken,
  parseScopes,
  parseToken,
  readTokensFile,
  verifyToken,
  writeTokensFile,
} from '../../src/auth/tokens.js'
import { isSledlogError } from '../../src/errors.js'
import { tempDir } from '../helpers/tmp.js'

describe('API tokens', () => {
  it('verify only with the exact secret of a known id; admin implies every scope', () => {
    const a = newToken('a', ['read'])
    const b = newToken('b', ['admin'])
    const records = new Map([a, b].map((t) => [t.record.id, t.record]))
    expect(verifyToken(records, a.token)?.id).toBe(a.record.id)
    const secretB = parseToken(b.token)?.secret as string
    // a's id with b's secret, a flipped character, a truncated token, garbage: all refused.
    expect(verifyToken(records, `sl_${a.record.id}_${secretB}`)).toBeNull()
    expect(verifyToken(records, a.token.slice(0, -1) + (a.token.endsWith('A') ? 'B' : 'A'))).toBeNull()
    expect(verifyToken(records, a.token.slice(0, -2))).toBeNull()
    expect(verifyToken(records, 'sl_000000000000_' + 'x'.repeat(43))).toBeNull()
    expect(verifyToken(new Map(), a.token)).toBeNull()
    expect(hasScope(a.record.scopes, 'append')).toBe(false)
    for (const s of ['read', 'append', 'consume', 'admin'] as const) expect(hasScope(b.record.scopes, s)).toBe(true)
    expect(a.record.hash).not.toContain(parseToken(a.token)?.secret)
    expect(parseScopes('read, append,read')).toEqual(['read', 'append'])
    expect(() => parseScopes('read,write')).toThrow(/unknown scope "write"/)
    expect(() => newToken('', ['read'])).toThrow(/token name/)
    expect(() => newToken('x', [])).toThrow(/at least one scope/)
  })

  it('are stored hashed, mode 0600; a broken or group-writable file is CONFIG_INVALID', async () => {
    const dir = await tempDir()
    const path = join(dir, 'api-tokens.json')
    expect(await readTokensFile(path)).toBeUndefined()
    const t = newToken('svc', ['read', 'append'])
    await writeTokensFile(path, [t.record])
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readFile(path, 'utf8')).not.toContain(parseToken(t.token)?.secret)
    expect(await readTokensFile(path)).toEqual([t.record])

    await chmod(path, 0o620)
    const err = await readTokensFile(path).catch((e: unknown) => e)
    expect(isSledlogError(err, 'CONFIG_INVALID') && err.message).toMatch(/group or others may write it/)
    await chmod(path, 0o600)
    for (const [text, why] of [
      ['{', /not JSON/],
      ['{"kind":"other","v":1,"tokens":[]}', /not a sledlog v1 API tokens file/],
      [JSON.stringify({ kind: 'sledlog-api-tokens', v: 1, tokens: [{ ...t.record, scopes: ['root'] }] }), /scopes/],
      [JSON.stringify({ kind: 'sledlog-api-tokens', v: 1, tokens: [t.record, t.record] }), /appears twice/],
      [JSON.stringify({ kind: 'sledlog-api-tokens', v: 1, tokens: [{ ...t.record, hash: 'x' }] }), /hash/],
    ] as const) {
      await writeFile(path, text)
      await expect(readTokensFile(path)).rejects.toThrow(why)
    }
  })

  it('are reloaded by a running store, which fails closed once it has held a token', async () => {
    const dir = await tempDir()
    const path = join(dir, 'api-tokens.json')
    const warnings: string[] = []
    const errors: string[] = []
    const store = new TokenStore(path, {
      warn: (_o, m) => warnings.push(m),
      error: (_o, m) => errors.push(m),
    })
    await store.start()
    onTestFinished(() => store.stop())
    expect(store.required).toBe(false)
    expect(store.authenticate(undefined)).toEqual({ ok: false, reason: 'missing' })

    const t = newToken('svc', ['read'])
    await writeTokensFile(path, [t.record])
    await store.reload()
    expect(store.required).toBe(true)
    expect(store.authenticate(`Bearer ${t.token}`)).toMatchObject({ ok: true, token: { id: t.record.id } })
    expect(store.authenticate(`bearer  ${t.token}`)).toMatchObject({ ok: true })
    expect(store.authenticate(`Basic ${t.token}`)).toEqual({ ok: false, reason: 'invalid' })

    // A broken file: every token refused, the API stays closed, the failure is logged.
    await writeFile(path, '{ half a file')
    await store.reload()
    expect(store.required).toBe(true)
    expect(store.authenticate(`Bearer ${t.token}`)).toEqual({ ok: false, reason: 'invalid' })
    expect(errors.at(-1)).toMatch(/every token is refused/)
    // Fixed again: the token works; then an emptied file does not open the API.
    await writeTokensFile(path, [t.record])
    await store.reload()
    expect(store.authenticate(`Bearer ${t.token}`).ok).toBe(true)
    await writeTokensFile(path, [])
    await store.reload()
    expect(store.required).toBe(true)
    expect(store.authenticate(`Bearer ${t.token}`).ok).toBe(false)
    // No log line carries the token.
    expect([...warnings, ...errors].join('\n')).not.toContain(parseToken(t.token)?.secret)
  })
})
