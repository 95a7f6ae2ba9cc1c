/**
 * The client side of secured nodes: every command that talks to a node sends the API token from
 * a file, the environment or a flag, trusts a self-signed node through --ca, and turns 401, 403
 * and TLS failures into one line saying what to do. Against stand-ins (test/cli/fake-node.ts)
 * that check the Authorization header as the API does, plain and over HTTPS; through the real
 * executable where exit codes and the process list matter, in-process otherwise. No output ever
 * holds the token.
 */
import { chmod, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { NodeClient } from '../../src/cli/http-client.js'
import { tempDir } from '../helpers/tmp.js'
import { tlsFile } from '../helpers/tls.js'
import { type CliResult, ndjson, runCli, runMain } from './cli-process.js'
import { entryJson, fakeNode, type FakeNodeOptions, json, sse } from './fake-node.js'

const READ_TOKEN = 'slt_read_0123456789abcdef'
const ALL_TOKEN = 'slt_all_fedcba9876543210'
const SCOPES: Readonly<Record<string, readonly string[]>> = {
  [READ_TOKEN]: ['read'],
  [ALL_TOKEN]: ['read', 'append'],
}

const STATUS = {
  sled: 'a'.repeat(64),
  entries: 1,
  heads: { ['a'.repeat(64)]: 0 },
  rejected: { total: 0, byCode: {} },
  forks: { sleds: 0, equivocations: 0, ignored: 0, withheld: 0, own: null, first: [] },
  missing: {},
  ownHeadBehind: null,
  writeFailed: null,
  appendsHeld: false,
  peers: [],
}

/** A node that requires a token with the route's scope, as the API does (401 without, 403 short of scope). */
function tokenNode(opts: FakeNodeOptions = {}) {
  return fakeNode((req: IncomingMessage, res: ServerResponse) => {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')
    const scopes = m === null ? undefined : SCOPES[m[1] as string]
    if (scopes === undefined) {
      json(res, 401, { error: { code: 'AUTH_REQUIRED', message: 'a valid API token is required' } })
      return
    }
    const path = (req.url ?? '').split('?')[0]
    const need = req.method === 'POST' ? 'append' : 'read'
    if (!scopes.includes(need)) {
      json(res, 403, { error: { code: 'AUTH_SCOPE', message: `token lacks scope ${need}` } })
      return
    }
    if (path === '/v1/status') json(res, 200, STATUS)
    else if (path === '/v1/events' && req.method === 'GET') json(res, 200, { entries: [entryJson(0)], next: null })
    else if (path === '/v1/events') json(res, 200, { entries: [entryJson(1, { type: 'x' })] })
    else if (path === '/v1/stream')
      sse(res, `event: entry\nid: c1\ndata: ${JSON.stringify(entryJson(0))}\n\nevent: live\ndata: {}\n\n`)
    else json(res, 404, { error: { code: 'HTTP_NOT_FOUND', message: 'no such route' } })
  }, opts)
}

/** A token file with mode 0600. */
async function tokenFile(token: string, mode = 0o600): Promise<string> {
  const path = join(await tempDir(), 'token')
  await writeFile(path, `${token}\n`)
  await chmod(path, mode)
  return path
}

/** No output of `r` holds a token. */
function noToken(r: CliResult): void {
  for (const t of [READ_TOKEN, ALL_TOKEN]) {
    expect(r.stdout).not.toContain(t)
    expect(r.stderr).not.toContain(t)
  }
}

describe('API tokens', () => {
  it('every command sends the token from --api-token-file as a Bearer header', async () => {
    const node = await tokenNode()
    const file = await tokenFile(ALL_TOKEN)
    const results = await Promise.all([
      runCli(['status', '--url', node.url, '--json', '--api-token-file', file]),
      runMain(['read', '--url', node.url, '--api-token-file', file]),
      runMain(['append', '--url', node.url, '--type', 'x', '--api-token-file', file]),
      runMain(['tail', '--url', node.url, '--from', 'start', '--until-live', '--quiet', '--api-token-file', file]),
    ])
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toBe('')
      noToken(r)
    }
    expect(JSON.parse(results[0]?.stdout ?? '')).toMatchObject({ entries: 1 })
    expect(ndjson(results[1]?.stdout ?? '')).toMatchObject([{ seq: 0 }])
    expect(JSON.parse(results[2]?.stdout ?? '')).toMatchObject({ seq: 1, type: 'x' })
    expect(ndjson(results[3]?.stdout ?? '')).toMatchObject([{ seq: 0 }])
    expect(node.requests.map((q) => q.headers.authorization)).toEqual(Array(4).fill(`Bearer ${ALL_TOKEN}`))
  })

  it('takes the token from SLEDLOG_API_TOKEN, or from --api-token with a warning', async () => {
    const node = await tokenNode()
    const env = await runMain(['status', '--url', node.url], { env: { SLEDLOG_API_TOKEN: READ_TOKEN } })
    expect(env.code, env.stderr).toBe(0)
    expect(env.stdout).toMatch(/appends +open/)
    const flag = await runCli(['status', '--url', node.url, '--api-token', READ_TOKEN])
    expect(flag.code, flag.stderr).toBe(0)
    expect(flag.stderr).toMatch(/^sledlog status: warning: --api-token is visible to other local users .*\n$/)
    noToken(env)
    noToken(flag)
    // The file wins over the environment.
    const file = await tokenFile(ALL_TOKEN)
    await runMain(['status', '--url', node.url, '--api-token-file', file], { env: { SLEDLOG_API_TOKEN: 'other' } })
    expect(node.requests.map((q) => q.headers.authorization)).toEqual([
      `Bearer ${READ_TOKEN}`,
      `Bearer ${READ_TOKEN}`,
      `Bearer ${ALL_TOKEN}`,
    ])
  })

  it('reports a missing token, a refused token and a missing scope as one line each, exit 1', async () => {
    const node = await tokenNode()
    const none = await runCli(['status', '--url', node.url])
    expect(none.code).toBe(1)
    expect(none.stderr).toBe(
      'sledlog status: the node requires an API token (AUTH_REQUIRED: a valid API token is required): ' +
        `give --api-token-file FILE or set SLEDLOG_API_TOKEN (node ${node.url})\n`,
    )
    const wrong = await runMain(['read', '--url', node.url], { env: { SLEDLOG_API_TOKEN: 'slt_revoked' } })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/^sledlog read: the node did not accept the API token \(AUTH_REQUIRED: .*\)[^\n]*\n$/)
    expect(wrong.stderr).not.toContain('slt_revoked')
    const scope = await runMain(['append', '--url', node.url, '--type', 'x'], {
      env: { SLEDLOG_API_TOKEN: READ_TOKEN },
    })
    expect(scope.code).toBe(1)
    expect(scope.stderr).toBe(
      'sledlog append: the API token lacks scope "append" needed for POST /v1/events ' +
        `(AUTH_SCOPE: token lacks scope append); use a token with that scope (node ${node.url})\n`,
    )
    noToken(scope)
    // tail gives up at once on 401 (retrying cannot help), without reconnect notices.
    const tail = await runMain(['tail', '--url', node.url])
    expect(tail.code).toBe(1)
    expect(tail.stderr).toMatch(/^sledlog tail: the node requires an API token .*\n$/)
  })

  it('refuses unusable token files and flags with exit 2, never echoing the token', async () => {
    const node = await tokenNode()
    const dir = await tempDir()
    const write = async (name: string, text: string): Promise<string> => {
      await writeFile(join(dir, name), text, { mode: 0o600 })
      return join(dir, name)
    }
    const cases: Array<[string[], RegExp]> = [
      [['--api-token-file', join(dir, 'missing')], /--api-token-file: cannot read .*missing \(no such file\)/],
      [['--api-token-file', await write('empty', '\n\n')], /--api-token-file: .*empty is empty/],
      [['--api-token-file', await write('two', `${READ_TOKEN}\n${ALL_TOKEN}\n`)], /holds more than one line/],
      [['--api-token-file', await write('space', `${READ_TOKEN} x\n`)], /holds spaces, control or non-ASCII/],
      [['--api-token', `${READ_TOKEN}\u001b`], /--api-token: the API token holds spaces, control or non-ASCII/],
      [['--api-token', READ_TOKEN, '--api-token-file', await write('t', READ_TOKEN)], /not both/],
    ]
    for (const [flags, pattern] of cases) {
      const r = await runMain(['status', '--url', node.url, ...flags])
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(pattern)
      noToken(r)
    }
    const data = await runMain(['status', '--data', dir, '--api-token', READ_TOKEN])
    expect(data.code).toBe(2)
    expect(data.stderr).toMatch(/--api-token-file, --api-token and --ca only apply with --url/)
    // None of them reached the node.
    expect(node.requests).toEqual([])
  })

  it('warns about a token file others can read, and a token sent over plain http off this machine', async () => {
    const node = await tokenNode()
    const open = await tokenFile(READ_TOKEN, 0o644)
    const r = await runMain(['status', '--url', node.url, '--api-token-file', open])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/warning: .*token can be read by other users \(mode 644\); chmod 600/)
    // .invalid never resolves: the warning comes before the attempt, which fails at once.
    const remote = await runMain(['status', '--url', 'http://node.invalid:9', '--api-token-file', open])
    expect(remote.code).toBe(1)
    expect(remote.stderr).toMatch(/warning: the API token goes over plain http:\/\/ to another machine/)
    noToken(remote)
  })
})

describe('HTTPS nodes', () => {
  it('trusts a node whose certificate chains to --ca (or SLEDLOG_CA), and says what to do otherwise', async () => {
    const node = await tokenNode({ tls: 'node' })
    const file = await tokenFile(ALL_TOKEN)
    const ok = await runCli(['read', '--url', node.url, '--ca', tlsFile('ca.pem'), '--api-token-file', file])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ndjson(ok.stdout)).toMatchObject([{ seq: 0 }])
    const env = await runMain(['tail', '--url', node.url, '--until-live', '-q', '--api-token-file', file], {
      env: { SLEDLOG_CA: tlsFile('ca.pem') },
    })
    expect(env.code, env.stderr).toBe(0)
    expect(ndjson(env.stdout)).toHaveLength(1)

    const untrusted = await runCli(['status', '--url', node.url, '--api-token-file', file])
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr).toMatch(
      new RegExp(
        `^sledlog status: cannot reach the node at ${node.url}: its TLS certificate is not trusted; ` +
          'if it is self-signed or issued by a private CA, give that CA with --ca FILE \\([A-Z_]+\\)\n$',
      ),
    )
    // tail does not retry a certificate it cannot trust.
    const tail = await runMain(['tail', '--url', node.url, '--api-token-file', file])
    expect(tail.code).toBe(1)
    expect(tail.stderr).toMatch(/its TLS certificate is not trusted/)
    expect(tail.stderr).not.toMatch(/reconnecting/)
    // The token never left for a node that was not trusted.
    expect(node.requests).toHaveLength(2)
  })

  it('refuses a node whose certificate another CA signed, or one issued for another address', async () => {
    const stranger = await fakeNode((_q, res) => json(res, 200, STATUS), { tls: 'stranger' })
    const r = await runMain(['status', '--url', stranger.url, '--ca', tlsFile('ca.pem')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/its TLS certificate is not trusted/)
    // 127.0.0.2 is loopback too, but the certificate names 127.0.0.1 only.
    const other = await fakeNode((_q, res) => json(res, 200, STATUS), { tls: 'node', host: '127.0.0.2' })
    const alt = await runMain(['status', '--url', other.url, '--ca', tlsFile('ca.pem')])
    expect(alt.code).toBe(1)
    expect(alt.stderr).toMatch(/its TLS certificate is not issued for this host name.*ERR_TLS_CERT_ALTNAME_INVALID/)
    expect(stranger.requests).toEqual([])
    expect(other.requests).toEqual([])
  })

  it('hints at the scheme when https meets plain http or the other way round', async () => {
    const plain = await fakeNode((_q, res) => json(res, 200, STATUS))
    const tls = await fakeNode((_q, res) => json(res, 200, STATUS), { tls: 'node' })
    const a = await runMain(['status', '--url', plain.url.replace('http:', 'https:'), '--ca', tlsFile('ca.pem')])
    expect(a.code).toBe(1)
    expect(a.stderr).toMatch(/the node does not speak TLS here; is it serving plain http:\/\/\?/)
    const b = await runMain(['status', '--url', tls.url.replace('https:', 'http:')])
    expect(b.code).toBe(1)
    expect(b.stderr).toMatch(/if the node serves HTTPS, use an https:\/\/ URL/)
  })

  it('refuses --ca that holds no certificate, or with an http:// URL, exit 2', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'junk.pem'), 'not a certificate\n')
    const junk = await runMain(['status', '--url', 'https://127.0.0.1:9', '--ca', join(dir, 'junk.pem')])
    expect(junk).toMatchObject({ code: 2, stderr: expect.stringMatching(/--ca: .*junk\.pem holds no PEM certificate/) })
    const key = await runMain(['status', '--url', 'https://127.0.0.1:9', '--ca', tlsFile('node.key')])
    expect(key).toMatchObject({ code: 2, stderr: expect.stringMatching(/holds no PEM certificate/) })
    expect(key.stderr).not.toContain('PRIVATE KEY')
    const http = await runMain(['status', '--url', 'http://127.0.0.1:9', '--ca', tlsFile('ca.pem')])
    expect(http).toMatchObject({ code: 2, stderr: expect.stringMatching(/--ca only applies to https:\/\/ URLs/) })
  })
})

describe('URLs with credentials', () => {
  it('are refused by every client command without echoing the password', async () => {
    for (const url of ['http://admin:hunter2secret@127.0.0.1:9', 'http://admin:hunter2/secret@127.0.0.1:9']) {
      for (const command of ['status', 'read', 'tail', 'append']) {
        const r = await runMain([command, '--url', url, ...(command === 'append' ? ['--type', 'x'] : [])])
        expect(r.code, r.stderr).toBe(2)
        expect(r.stderr).toMatch(/carries credentials \(user:password@\); give an API token with --api-token-file/)
        expect(r.stderr).not.toContain('hunter2')
        expect(r.stderr).toContain('http://***@')
      }
    }
  })
})

describe('NodeClient', () => {
  it('refuses an answer larger than its cap instead of buffering it', async () => {
    const node = await fakeNode((_q, res) => json(res, 200, { entries: 'x'.repeat(100_000), next: null }))
    const client = new NodeClient(node.url, { maxAnswerBytes: 10_000 })
    await expect(client.get('/v1/events')).rejects.toThrow(
      /GET http:\/\/127\.0\.0\.1:\d+\/v1\/events: the answer is larger than 10 KiB/,
    )
    client.close()
  })
})
