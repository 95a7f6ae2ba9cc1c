/**
 * What a token file change does to a running node process, as an operator or an attacker makes
 * it: a revoke ends the token's open event streams (not only its later requests), a chmod that
 * lets others write the file stops every token at once, and a file owned by another user is
 * refused.
 */
import { chmod, chown, rename, symlink, writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tokensPath } from '../../src/auth/tokens.js'
import { runCli } from '../cli/cli-process.js'
import { bearer, withTokens } from '../helpers/api-tokens.js'
import { tempDir } from '../helpers/tmp.js'
import { call, failedStart, startNode, waitFor } from './node-process.js'
import { SseClient, type SseEvent } from './sse-client.js'

const idOf = (token: string): string => token.slice(3, 15)
const isRoot = process.getuid?.() === 0

/** Reads a stream to its end; returns its events. */
async function drain(s: SseClient, timeoutMs = 10_000): Promise<SseEvent[]> {
  const out: SseEvent[] = []
  for (;;) {
    try {
      out.push(await s.next(timeoutMs))
    } catch {
      return out
    }
  }
}

describe('token file changes while a node runs (node process)', () => {
  it("a revoke ends the token's open streams; a chmod letting others write the file ends them all", async () => {
    const dir = await tempDir()
    const t = await withTokens(dir, { reader: ['read'], worker: ['consume', 'read'], root: ['admin'] })
    const node = await startNode(dir)
    const u = node.url
    const append = async (payload: unknown): Promise<void> => {
      expect((await call(u, 'POST', '/v1/events', { type: 'x', payload }, bearer(t.root as string))).status).toBe(201)
    }
    expect((await call(u, 'PUT', '/v1/consumers/c', undefined, bearer(t.worker as string))).status).toBe(201)
    const reading = await SseClient.open(`${u}/v1/stream?from=now`, bearer(t.reader as string))
    const consuming = await SseClient.open(`${u}/v1/stream?consumer=c`, bearer(t.worker as string))
    await reading.until((e) => e.event === 'live')
    await consuming.until((e) => e.event === 'live')
    await append('before')
    expect((await reading.until((e) => e.event === 'entry')).at(-1)?.data).toContain('"before"')
    await consuming.until((e) => e.event === 'entry')

    // Before: the revoked reader's stream stayed open and kept receiving every new entry.
    expect((await runCli(['token', 'revoke', idOf(t.reader as string), '--data', dir])).code).toBe(0)
    const rest = await drain(reading)
    expect(rest.at(-1)).toMatchObject({ event: 'closed' })
    expect(JSON.parse(rest.at(-1)?.data as string)).toMatchObject({ reason: 'token-revoked' })
    await append('after revoke')
    expect(rest.map((e) => e.data).join('\n')).not.toContain('after revoke')
    // Another token's stream is untouched.
    expect((await consuming.until((e) => e.event === 'entry')).at(-1)?.data).toContain('after revoke')

    // A chmod changes no mtime, so it went unnoticed until the file's next write: now every
    // token is refused at once (fail closed), streams included, until the mode is fixed.
    await chmod(tokensPath(dir), 0o666)
    const cut = await drain(consuming)
    expect(JSON.parse(cut.at(-1)?.data as string)).toMatchObject({ reason: 'token-revoked' })
    expect((await call(u, 'GET', '/v1/status', undefined, bearer(t.root as string))).status).toBe(401)
    await chmod(tokensPath(dir), 0o600)
    await waitFor(
      async () => (await call(u, 'GET', '/v1/status', undefined, bearer(t.root as string))).status === 200,
      10_000,
      'the fixed file to be read again',
    )
    const status = await call(u, 'GET', '/v1/status', undefined, bearer(t.root as string))
    expect(status.body.subscribers.cutOff).toMatchObject({ 'token-revoked': 2 })
  })

  it.skipIf(!isRoot)(
    'refuses a tokens file owned by another user, at start and when swapped in by a link',
    async () => {
      const dir = await tempDir()
      const t = await withTokens(dir, { root: ['admin'] })
      const path = tokensPath(dir)
      // Another user's copy, mode 0644: only its owner can write it, and that owner is not us.
      const foreign = join(dir, 'foreign.json')
      await writeFile(foreign, await readFile(path))
      await chmod(foreign, 0o644)
      await chown(foreign, 65534, 65534)

      const refused = await failedStart(dir, ['--host', '127.0.0.1', '--api-tokens', foreign])
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain('is owned by uid 65534')

      const node = await startNode(dir)
      expect((await call(node.url, 'GET', '/v1/status', undefined, bearer(t.root as string))).status).toBe(200)
      await rename(path, join(dir, 'mine.json'))
      await symlink(foreign, path)
      await waitFor(
        async () => (await call(node.url, 'GET', '/v1/status', undefined, bearer(t.root as string))).status === 401,
        10_000,
        'the foreign file to be refused',
      )
      expect(node.stderr()).toContain('is owned by uid 65534')
    },
  )
})
