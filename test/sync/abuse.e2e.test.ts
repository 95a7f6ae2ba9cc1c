/**
 * Abuse of the sync endpoint against real node processes (`sledlog node`, real sockets):
 * clients that reset on every refusal path, hundreds of idle websockets, handshake floods from
 * many addresses while an allow-listed peer links, syncs, restarts and relinks, and a flood of
 * step 1 messages (amplification, and the latency of a well-behaved HTTP client meanwhile).
 *
 * Sizes are small by default; SLEDLOG_ABUSE=large runs the big ones (2,000 websockets from 250
 * addresses, longer floods). Every figure is printed for the record (docs/PROTOCOL.md §8).
 */
import { describe, expect, it } from 'vitest'
import { initDataDir } from '../../src/node/init-data-dir.js'
import { encodeStep1 } from '../../src/sync/messages.js'
import { call, startNode, waitFor, type NodeProcess } from '../http/node-process.js'
import { LatencyProbe, type ProbeFigures } from '../helpers/probe.js'
import { rssOf } from '../helpers/rss.js'
import { HandshakeFlood, loopbackAddresses, openFds, rawRequest, upgradeRequest } from '../helpers/sync-abuse.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { testKeys } from '../helpers/keys.js'
import { tempDir } from '../helpers/tmp.js'

const LARGE = process.env.SLEDLOG_ABUSE === 'large'
const ATTACKER = testKeys(501)

/** Appends `n` entries of ~250 bytes through the API. */
async function fill(node: NodeProcess, n: number): Promise<void> {
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
      type: 'fill',
      payload: { i: i + j, pad: 'x'.repeat(200) },
    }))
    const r = await call(node.url, 'POST', '/v1/events', batch)
    if (r.status >= 300) throw new Error(`fill: ${r.status} ${JSON.stringify(r.body)}`)
  }
}

/** The node process is still there, answers /healthz and never logged an uncaught exception. */
async function expectAlive(node: NodeProcess): Promise<void> {
  expect(node.child.exitCode).toBeNull()
  expect((await call(node.url, 'GET', '/healthz')).status).toBe(200)
  expect(node.stderr()).not.toMatch(/uncaught exception|unhandled promise rejection/)
}

const wsUrl = (node: NodeProcess): string => node.url.replace(/^http/, 'ws')

/** The probe's figures for its one path. */
const healthz = (figures: readonly ProbeFigures[]): ProbeFigures => figures[0] as ProbeFigures

/** Resident memory of `pid` in MB. */
const rssMb = async (pid: number): Promise<number> => Math.round(((await rssOf(pid)) ?? 0) / 2 ** 20)

/** A raw socket's hard reset (RST), as a client that crashes or a middlebox sends. */
function reset(socket: { resetAndDestroy(): unknown }): void {
  socket.resetAndDestroy()
}

describe('abuse against a real node process', () => {
  it('resets at every refusal (404, 429, bad upgrade, mid-handshake, mid-answer) never stop the node', async () => {
    const node = await startNode(await tempDir())
    await fill(node, 2000)
    const port = Number(new URL(node.url).port)
    const rounds = LARGE ? 100 : 10
    for (let r = 0; r < rounds; r++) {
      // 404: an upgrade to another path.
      const notFound = await rawRequest({ port, request: upgradeRequest('/nope') })
      expect(notFound.status).toBe(404)
      reset(notFound.socket)
      // 429: an address holding its 8 handshake slots asks for a 9th.
      const address = `127.0.1.${(r % 200) + 1}`
      const held = await Promise.all(Array.from({ length: 8 }, () => rawRequest({ port, localAddress: address })))
      expect(held.map((h) => h.status)).toEqual(Array(8).fill(101))
      const busy = await rawRequest({ port, localAddress: address })
      expect(busy.status).toBe(429)
      reset(busy.socket)
      // Mid-handshake: the slots reset after the node's hello.
      for (const h of held) reset(h.socket)
      // A bad upgrade request (no Sec-WebSocket-Key): ws answers 400.
      const bad = await rawRequest({
        port,
        request: 'GET /v1/sync HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      })
      expect(bad.status).toBe(400)
      reset(bad.socket)
      // Mid-answer: authenticated, asks for everything, resets once the answer streams.
      const c = await HostileClient.authenticated(wsUrl(node), { keys: ATTACKER })
      await c.sendStep1(new Uint8Array([0]))
      await c.waitFor(() => c.messages.some((m) => m.t === 'update'), 'the answer streaming')
      reset((c.ws as unknown as { _socket: { resetAndDestroy(): unknown } })._socket)
    }
    await new Promise((r) => setTimeout(r, 300))
    await expectAlive(node)
    await node.stop()
    expect(node.child.exitCode).toBe(0)
  })

  it('hundreds of idle websockets never authenticating: slots stay bounded, node responsive, memory flat', async () => {
    const node = await startNode(await tempDir())
    const port = Number(new URL(node.url).port)
    const addresses = loopbackAddresses(LARGE ? 250 : 40)
    const pid = node.child.pid as number
    const [rssBefore, fdsBefore] = [await rssMb(pid), openFds(pid)]
    const probe = new LatencyProbe(node.url, ['/healthz']).start()
    const flood = new HandshakeFlood(port, addresses, 8)
    flood.start()
    await new Promise((r) => setTimeout(r, LARGE ? 15_000 : 4000))
    // A real peer arriving now still authenticates: it takes a stranger's slot.
    const t0 = Date.now()
    const honest = await HostileClient.authenticated(wsUrl(node), { keys: testKeys(502), localAddress: '127.0.3.1' })
    const honestMs = Date.now() - t0
    honest.close()
    const held = flood.stats
    const [rssDuring, fdsDuring] = [await rssMb(pid), openFds(pid)]
    flood.stop()
    const lat = healthz(await probe.stop())
    const figures = {
      sockets: addresses.length * 8,
      flood: held,
      nodeFds: { before: fdsBefore, during: fdsDuring },
      rssMb: { before: rssBefore, during: rssDuring },
      honestHandshakeMs: honestMs,
      healthz: lat,
    }
    console.log(`[idle websockets] ${JSON.stringify(figures)}`)
    // The node holds its 64 handshake slots and the few sockets it is closing, not the flood.
    expect(fdsDuring - fdsBefore).toBeLessThan(200)
    expect(rssDuring - rssBefore).toBeLessThan(150)
    expect(lat.failures).toBe(0)
    await expectAlive(node)
  })

  it('handshake flood from many addresses: an allow-listed peer links, syncs, relinks at once on restart', async () => {
    const bDir = await tempDir()
    // Key and store together, as `sledlog keygen` makes them: a key alone is a lost disk to recover.
    const b = (await initDataDir(bDir)).keys
    const a = await startNode(await tempDir(), ['--allow', b.sled])
    await fill(a, 300)
    const port = Number(new URL(a.url).port)
    const addresses = loopbackAddresses(LARGE ? 249 : 40)
    const flood = new HandshakeFlood(port, addresses, 8)
    flood.start()
    await waitFor(() => ((flood.stats.statuses['101'] ?? 0) >= 64 ? true : undefined), 10_000, 'the flood saturating')
    const synced = async (node: NodeProcess): Promise<number> => {
      const t0 = Date.now()
      await waitFor(
        async () => {
          const st = (await call(node.url, 'GET', '/v1/status')).body as { heads: Record<string, number> }
          return st.heads[a.sled] === 299 ? true : undefined
        },
        30_000,
        'the allow-listed peer synced',
      )
      return Date.now() - t0
    }
    let peer = await startNode(bDir, ['--peer', wsUrl(a)])
    const first = await synced(peer)
    await peer.stop()
    peer = await startNode(bDir, ['--peer', wsUrl(a)])
    const t0 = Date.now()
    await waitFor(
      async () => {
        const st = (await call(peer.url, 'GET', '/v1/status')).body as { peers: Array<{ connected: boolean }> }
        return st.peers[0]?.connected === true ? true : undefined
      },
      30_000,
      'relinked',
    )
    const relink = Date.now() - t0
    const figures = { addresses: addresses.length, flood: flood.stats, firstSyncMs: first, relinkMs: relink }
    console.log(`[handshake flood] ${JSON.stringify(figures)}`)
    flood.stop()
    expect(first).toBeLessThan(15_000)
    expect(relink).toBeLessThan(5000)
    await expectAlive(a)
  })

  it('a flood of step 1 messages asking for the whole log: bounded amplification, a responsive node', async () => {
    const node = await startNode(await tempDir())
    await fill(node, 2000)
    const c = await HostileClient.authenticated(wsUrl(node), { keys: ATTACKER })
    let received = 0
    c.ws.on('message', (d: Buffer) => (received += d.length))
    // One honest ask first: the size of a whole answer.
    await c.sendStep1(new Uint8Array([0]))
    await c.waitFor(() => c.messages.some((m) => m.t === 'step2'), 'the first answer', 15_000)
    const whole = received
    received = 0
    const probe = new LatencyProbe(node.url, ['/healthz']).start()
    const step1 = encodeStep1(new Uint8Array([0]))
    let asked = 0
    const until = Date.now() + (LARGE ? 15_000 : 5000)
    while (Date.now() < until) {
      for (let i = 0; i < 50; i++) c.ws.send(step1)
      asked += 50 * step1.length
      await new Promise((r) => setTimeout(r, 10))
    }
    await new Promise((r) => setTimeout(r, 1000))
    const lat = healthz(await probe.stop())
    const figures = { whole, asked, answered: received, ratio: Math.round((received / asked) * 10) / 10, healthz: lat }
    console.log(`[step-1 flood] ${JSON.stringify(figures)}`)
    // Before: every ask got the whole log again (20 KB asked, 137 MB answered: 6,830x).
    // Now: one rewind a minute is honored (the digest refetch's case), the rest coalesced.
    expect(received).toBeLessThan(whole * 2)
    expect(lat.failures).toBe(0)
    c.terminate()
    await expectAlive(node)
  })
})
