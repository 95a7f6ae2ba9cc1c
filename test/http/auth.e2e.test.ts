/**
 * API tokens against real node processes: without a valid token nothing is signed, scopes are
 * enforced per route, `sledlog token revoke` takes effect without a restart, tokens never
 * appear in the node's logs, and a node off loopback refuses to start unprotected.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { parseToken, tokensPath } from '../../src/auth/tokens.js'
import { runCli } from '../cli/cli-process.js'
import { bearer, withTokens } from '../helpers/api-tokens.js'
import { tempDir } from '../helpers/tmp.js'
import { call, failedStart, startNode, startNodeWithConfig, waitFor } from './node-process.js'
import { SseClient } from './sse-client.js'

describe('API tokens (node process)', () => {
  it('refuses requests without a valid token, enforces scopes, and signs nothing unauthenticated', async () => {
    const dir = await tempDir()
    const t = await withTokens(dir, {
      reader: ['read'],
      writer: ['append'],
      worker: ['consume', 'read'],
      root: ['admin'],
    })
    const node = await startNode(dir)
    const u = node.url
    const ev = { type: 'order.created', payload: { n: 1 } }

    // No token, a malformed one, an unknown one, a forged secret for a real id: 401, nothing signed.
    const forged = `${t.writer?.slice(0, 16)}${'A'.repeat(43)}`
    for (const headers of [{}, { authorization: 'Basic eDp5' }, bearer('nope'), bearer(forged)]) {
      const r = await call(u, 'POST', '/v1/events', ev, headers)
      expect(r.status).toBe(401)
      expect(r.body.error.code).toBe('HTTP_UNAUTHORIZED')
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="sledlog"/)
      expect((await call(u, 'POST', '/v1/ingest', [ev], headers)).status).toBe(401)
    }
    expect((await call(u, 'POST', '/v1/events', ev, bearer('nope'))).headers.get('www-authenticate')).toContain(
      'invalid_token',
    )
    // Every route but /healthz needs a token.
    for (const [method, path] of [
      ['GET', '/v1/events'],
      ['GET', '/v1/status'],
      ['GET', '/metrics'],
      ['GET', '/v1/consumers'],
      ['PUT', '/v1/consumers/c'],
      ['GET', '/v1/stream'],
    ] as const) {
      expect([method, path, (await call(u, method, path)).status]).toEqual([method, path, 401])
    }
    // /healthz is open but says no more than ok.
    expect(await call(u, 'GET', '/healthz')).toMatchObject({ status: 200, body: { ok: true } })
    expect((await call(u, 'GET', '/healthz')).body).toEqual({ ok: true })
    expect((await call(u, 'GET', '/healthz', undefined, bearer(t.reader as string))).body).toEqual({
      ok: true,
      sled: node.sled,
    })

    // Wrong scope: 403 with the scope named; still nothing signed.
    const denied = await call(u, 'POST', '/v1/events', ev, bearer(t.reader as string))
    expect(denied).toMatchObject({
      status: 403,
      body: { error: { code: 'HTTP_FORBIDDEN', details: { scope: 'append' } } },
    })
    expect((await call(u, 'GET', '/v1/events', undefined, bearer(t.writer as string))).status).toBe(403)
    expect((await call(u, 'PUT', '/v1/consumers/c', undefined, bearer(t.reader as string))).status).toBe(403)
    const noConsume = await SseClient.open(`${u}/v1/stream?consumer=c`, bearer(t.reader as string))
    expect(noConsume.status).toBe(403)
    // The operator's recovery decision needs admin; on a node that is not recovering it is refused.
    const accept = '/v1/recovery/accept-head-risking-fork'
    for (const who of [t.writer, t.worker] as string[])
      expect(await call(u, 'POST', accept, { head: 0 }, bearer(who))).toMatchObject({
        status: 403,
        body: { error: { code: 'HTTP_FORBIDDEN', details: { scope: 'admin' } } },
      })
    expect(await call(u, 'POST', accept, { head: 0 }, bearer(t.root as string))).toMatchObject({
      status: 409,
      body: { error: { code: 'RECOVERY_NOT_ACCEPTED' } },
    })

    const before = await call(u, 'GET', '/v1/events', undefined, bearer(t.reader as string))
    expect(before.body.entries).toEqual([])
    expect((await call(u, 'GET', '/v1/status', undefined, bearer(t.reader as string))).body.heads).toEqual({})

    // The right scopes work; admin has them all.
    expect((await call(u, 'POST', '/v1/events', ev, bearer(t.writer as string))).status).toBe(201)
    expect((await call(u, 'POST', '/v1/events', ev, bearer(t.root as string))).status).toBe(201)
    expect((await call(u, 'PUT', '/v1/consumers/c', undefined, bearer(t.worker as string))).status).toBe(201)
    const ack = await call(u, 'POST', '/v1/consumers/c/ack', { sled: node.sled, seq: 0 }, bearer(t.worker as string))
    expect(ack.status).toBe(200)
    const cs = await SseClient.open(`${u}/v1/stream?consumer=c`, bearer(t.worker as string))
    expect((await cs.until((e) => e.event === 'live')).filter((e) => e.event === 'entry')).toHaveLength(1)
    cs.close()
    const metrics = await fetch(`${u}/metrics`, { headers: bearer(t.reader as string) })
    expect(metrics.status).toBe(200)
    const status = await call(u, 'GET', '/v1/status', undefined, bearer(t.reader as string))
    expect(status.body.heads).toEqual({ [node.sled]: 1 })
    expect(status.body.security).toMatchObject({ loopbackOnly: true, apiAuth: { enabled: true, tokens: 4 } })

    // The tokens file holds hashes only, and no token reached the node's logs.
    const file = await readFile(tokensPath(dir), 'utf8')
    await node.stop()
    for (const token of Object.values(t)) {
      // The secret is base64url and may itself contain '_': split with the token parser.
      const secret = parseToken(token)?.secret as string
      expect(secret).toHaveLength(43)
      expect(file).not.toContain(secret)
      expect(node.stderr()).not.toContain(secret)
    }
  })

  it('takes a revoke (sledlog token revoke) and a new token into account without a restart', async () => {
    const dir = await tempDir()
    const created = await runCli(['token', 'create', '--data', dir, '--name', 'app', '--scope', 'read,append'])
    expect(created.code).toBe(0)
    const token = created.stdout.trim()
    expect(token).toMatch(/^sl_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
    const id = token.split('_')[1] as string
    const node = await startNode(dir)
    const ev = { type: 't', payload: 1 }
    expect((await call(node.url, 'POST', '/v1/events', ev, bearer(token))).status).toBe(201)

    const listed = await runCli(['token', 'list', '--data', dir, '--json'])
    expect(JSON.parse(listed.stdout)).toEqual([
      { id, name: 'app', scopes: ['read', 'append'], created: expect.any(Number) },
    ])
    expect(listed.stdout).not.toContain(parseToken(token)?.secret)

    const second = await runCli(['token', 'create', '--data', dir, '--name', 'ops', '--scope', 'admin'])
    const opsToken = second.stdout.trim()
    await waitFor(
      async () =>
        (await call(node.url, 'GET', '/v1/status', undefined, bearer(opsToken))).status === 200 ? true : undefined,
      10_000,
      'the new token to be accepted',
    )

    expect((await runCli(['token', 'revoke', id, '--data', dir])).code).toBe(0)
    await waitFor(
      async () =>
        (await call(node.url, 'GET', '/v1/events', undefined, bearer(token))).status === 401 ? true : undefined,
      10_000,
      'the revoked token to be refused',
    )
    expect((await call(node.url, 'POST', '/v1/events', ev, bearer(token))).status).toBe(401)
    expect((await call(node.url, 'GET', '/v1/events', undefined, bearer(opsToken))).body.entries).toHaveLength(1)
    expect((await runCli(['token', 'revoke', id, '--data', dir])).code).toBe(1)

    // Emptying the file does not open the API: no token is valid any more.
    expect((await runCli(['token', 'revoke', opsToken.split('_')[1] as string, '--data', dir])).code).toBe(0)
    await waitFor(
      async () =>
        (await call(node.url, 'GET', '/v1/status', undefined, bearer(opsToken))).status === 401 ? true : undefined,
      10_000,
      'the last token to be refused',
    )
    expect((await call(node.url, 'GET', '/v1/status')).status).toBe(401)
  })
})

describe('safe defaults off loopback (node process)', () => {
  it('refuses to start on 0.0.0.0 without API tokens and without an allow-list or sync token', async () => {
    const dir = await tempDir()
    const r = await failedStart(dir, ['--host', '0.0.0.0'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('CONFIG_INVALID')
    expect(r.stderr).toContain('no API tokens')
    expect(r.stderr).toContain('sledlog token create')
    expect(r.stderr).toContain('no replication allow-list or sync token')
    expect(r.stderr).toContain('--insecure')
    // Refused before the data directory was touched: no key, no database.
    await expect(readFile(`${dir}/sled.key`)).rejects.toThrow()

    // Tokens alone are not enough: replication must be restricted too.
    await withTokens(dir, { root: ['admin'] })
    const half = await failedStart(dir, ['--host', '0.0.0.0'])
    expect(half.code).toBe(2)
    expect(half.stderr).not.toContain('no API tokens')
    expect(half.stderr).toContain('no replication allow-list or sync token')
  })

  it('starts on 0.0.0.0 with API tokens and an allow-list, and shows what protects it', async () => {
    const dir = await tempDir()
    const t = await withTokens(dir, { root: ['admin'] })
    const node = await startNode(dir, ['--host', '0.0.0.0', '--allow', 'a'.repeat(64)])
    expect((await call(node.url, 'GET', '/v1/status')).status).toBe(401)
    const st = await call(node.url, 'GET', '/v1/status', undefined, bearer(t.root as string))
    expect(st.body.security).toEqual({
      loopbackOnly: false,
      apiAuth: { enabled: true, tokens: 1 },
      sync: { allowList: 1, token: false },
      tls: false,
      allowedHosts: [],
      corsOrigins: [],
      insecure: false,
      warnings: ['API tokens travel in clear text off loopback: serve TLS (--tls-cert, --tls-key)'],
    })
  })

  it('starts unprotected only when told insecure, with a warning in the log and in status', async () => {
    const dir = await tempDir()
    const node = await startNodeWithConfig(dir, { host: '0.0.0.0', insecure: true })
    expect(node.stderr()).toMatch(/"level":"warn".*insecure: no API tokens/)
    const st = await call(node.url, 'GET', '/v1/status')
    expect(st.status).toBe(200)
    expect(st.body.security).toMatchObject({ loopbackOnly: false, insecure: true, apiAuth: { enabled: false } })
    expect(st.body.security.warnings).toHaveLength(2)
    expect(st.body.security.warnings[0]).toMatch(/^insecure: no API tokens/)
  })
})
