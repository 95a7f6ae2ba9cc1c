/**
 * Browser safety and TLS against real node processes: DNS rebinding (Host), cross-origin
 * requests (Origin, CORS preflight), simple cross-origin POSTs (415), and HTTPS/WSS on the
 * node's one port with the test-only certificate.
 */
import { tlsFile } from '../helpers/tls.js'
import { readFile } from 'node:fs/promises'
import { request } from 'node:https'
import { describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { rawExchange, rawGet, sendAndReset } from '../helpers/abuse.js'
import { tempDir } from '../helpers/tmp.js'
import { call, startNode, startNodeWithConfig } from './node-process.js'

describe('Host and Origin checks (node process)', () => {
  it('refuses foreign Host names and origins, answers CORS only for configured origins', async () => {
    const dir = await tempDir()
    const app = 'https://app.example.com'
    const node = await startNodeWithConfig(dir, { allowedHosts: ['sledlog.internal'], corsOrigins: [app] })
    const u = node.url
    const port = new URL(u).port

    // DNS rebinding: the attacker's name in Host is refused on every route, /healthz included.
    for (const path of ['/healthz', '/v1/events', '/v1/status']) {
      const answer = await rawExchange(u, rawGet(u, path, { host: 'attacker.example', connection: 'close' }))
      expect(answer).toMatch(/^HTTP\/1\.1 403 /)
      expect(answer).toContain('"HTTP_HOST_NOT_ALLOWED"')
    }
    const posted = await rawExchange(
      u,
      `POST /v1/events HTTP/1.1\r\nHost: attacker.example:${port}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 25\r\nConnection: close\r\n\r\n{"type":"x","payload":1}',
    )
    expect(posted).toMatch(/^HTTP\/1\.1 403 /)
    // Loopback names, IP literals and configured names are served.
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      'sledlog.internal',
      'SLEDLOG.internal.',
    ]) {
      const answer = await rawExchange(u, rawGet(u, '/healthz', { host, connection: 'close' }))
      expect([host, answer.slice(0, 15)]).toEqual([host, 'HTTP/1.1 200 OK'])
    }

    // A foreign Origin is refused; the node's own origin and the configured one are served.
    const foreign = await call(u, 'GET', '/v1/events', undefined, { origin: 'https://evil.example' })
    expect(foreign).toMatchObject({ status: 403, body: { error: { code: 'HTTP_ORIGIN_NOT_ALLOWED' } } })
    expect((await call(u, 'GET', '/v1/events', undefined, { origin: 'null' })).status).toBe(403)
    const same = await call(u, 'GET', '/v1/events', undefined, { origin: u })
    expect(same.status).toBe(200)
    expect(same.headers.get('access-control-allow-origin')).toBeNull()
    const cross = await call(u, 'GET', '/v1/events', undefined, { origin: app })
    expect(cross.status).toBe(200)
    expect(cross.headers.get('access-control-allow-origin')).toBe(app)
    expect(cross.headers.get('vary')).toBe('Origin')

    // Preflight: 204 for the configured origin, with Authorization allowed; 403 for others.
    const pre = await fetch(`${u}/v1/events`, {
      method: 'OPTIONS',
      headers: {
        origin: app,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe(app)
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET, POST')
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization')
    const preEvil = await fetch(`${u}/v1/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    expect(preEvil.status).toBe(403)
    // Without an Origin, OPTIONS is still just a method the route does not have.
    expect((await call(u, 'OPTIONS', '/v1/events')).status).toBe(405)
  })

  it('refuses POST bodies that are not declared JSON (415), so form and text POSTs change nothing', async () => {
    const node = await startNode(await tempDir())
    const u = node.url
    const body = '{"type":"x","payload":1}'
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
      const headers: Record<string, string> = type === '' ? {} : { 'content-type': type }
      const r = await fetch(`${u}/v1/events`, { method: 'POST', body, headers })
      expect([type, r.status]).toEqual([type, 415])
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('HTTP_UNSUPPORTED_MEDIA_TYPE')
    }
    expect((await call(u, 'POST', '/v1/ingest', body, { 'content-type': 'text/plain' })).status).toBe(415)
    expect(
      (await call(u, 'POST', '/v1/events', body, { 'content-type': 'application/json; charset=utf-8' })).status,
    ).toBe(201)
    expect((await call(u, 'GET', '/v1/events')).body.entries).toHaveLength(1)
  })
})

describe('TLS (node process)', () => {
  it('serves HTTPS and WSS on one port with the configured certificate', async () => {
    const dir = await tempDir()
    const node = await startNodeWithConfig(dir, {
      tls: { certFile: tlsFile('node.pem'), keyFile: tlsFile('node.key') },
    })
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const ca = await readFile(tlsFile('ca.pem'))
    const get = (path: string, method = 'GET', body?: string): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const req = request(
          `${node.url}${path}`,
          { ca, method, headers: body === undefined ? {} : { 'content-type': 'application/json' } },
          (res) => {
            let text = ''
            res.setEncoding('utf8')
            res.on('data', (d: string) => {
              text += d
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
          },
        )
        req.on('error', reject)
        req.end(body)
      })
    expect(await get('/healthz')).toMatchObject({ status: 200 })
    expect((await get('/v1/events', 'POST', '{"type":"t","payload":1}')).status).toBe(201)
    const st = JSON.parse((await get('/v1/status')).text)
    expect(st.security).toMatchObject({ tls: true, loopbackOnly: true })

    // The sync endpoint upgrades over TLS on the same port (a full peer link is the sync side's test).
    const ws = new WebSocket(`${node.url.replace('https', 'wss')}/v1/sync`, { ca })
    const first = await new Promise<Buffer>((resolve, reject) => {
      ws.once('message', (d: Buffer) => resolve(d))
      ws.once('error', reject)
    })
    expect(first.length).toBeGreaterThan(0)
    ws.terminate()

    // Plain HTTP to the TLS port and a reset mid-handshake end quietly; the node keeps serving.
    const plain = await rawExchange(
      node.url.replace('https', 'http'),
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    )
    expect(plain).not.toContain('"ok"')
    await sendAndReset(node.url.replace('https', 'http'), Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01]))
    // An untrusted client (no CA) fails its handshake without harming the node.
    await expect(fetch(`${node.url}/healthz`)).rejects.toThrow()
    expect(await get('/healthz')).toMatchObject({ status: 200 })
    await node.stop()
    expect(node.child.exitCode).toBe(0)
  })

  it('refuses to start when the certificate cannot be read, naming the file', async () => {
    const dir = await tempDir()
    await expect(
      startNodeWithConfig(dir, { tls: { certFile: `${dir}/missing.pem`, keyFile: tlsFile('node.key') } }),
    ).rejects.toThrow(/cannot read the TLS certificate .*missing\.pem/)
  })
})
