/**
 * The life of replication links against real in-process nodes (real LevelDB, real sockets):
 * who gets a handshake slot and a link when strangers crowd a node, links that go silent or
 * never answer, answers to repeated step 1 messages, the ledger of rejections and kicks, why a
 * dial failed (status `lastError`), and peers over TLS.
 */
import { TLS_DIR, tlsFile } from '../helpers/tls.js'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createConnection, type AddressInfo, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { freePort } from '../../src/harness/cluster.js'
import { FaultProxy } from '../../src/harness/proxy.js'
import type { KeyPair } from '../../src/core/signing.js'
import { encodeRuns, encodeStateVector } from '../../src/core/update-codec.js'
import { CLOSE } from '../../src/sync/close-codes.js'
import type { SyncLogger } from '../../src/sync/ledger.js'
import { encodeAwarenessKeepAlive, encodeStep1, type WireMessage } from '../../src/sync/messages.js'
import { Replicator, type PeerStatus } from '../../src/sync/replicator.js'
import { HostileClient, HostileServer, type HostileClientOptions } from '../helpers/hostile-peer.js'
import { signedRun, signEntry, TEST_TS, testKeys } from '../helpers/keys.js'
import { successionBody, successionRecord } from '../helpers/succession.js'
import { testLog } from '../helpers/logs.js'
import { sleep, syncNode, until, type SyncNode, type SyncNodeOptions } from '../helpers/sync-node.js'

const STRANGERS = [401, 402, 403, 404, 405, 406].map(testKeys)
const PEER = testKeys(410)
const EVIL = testKeys(411)
/** Successors (of a dialed or listed sled) and listed sleds of the link-cap tests. */
const NEXT = testKeys(412)
const LISTED = [413, 414, 415].map(testKeys)

const NODE_CERT = readFileSync(tlsFile('node.pem'))
const NODE_KEY = readFileSync(tlsFile('node.key'))
const OTHER_CERT = readFileSync(tlsFile('stranger.pem'))
const pinOf = (pem: Buffer): string => new X509Certificate(pem).fingerprint256

async function client(node: SyncNode, keys: KeyPair, opts: Partial<HostileClientOptions> = {}): Promise<HostileClient> {
  const c = await HostileClient.connect(node.url, { keys, ...opts })
  onTestFinished(() => c.terminate())
  return c
}

async function authed(node: SyncNode, keys: KeyPair, opts: Partial<HostileClientOptions> = {}) {
  const c = await client(node, keys, opts)
  await c.handshake()
  return c
}

function dialed(node: SyncNode, url: string): PeerStatus | undefined {
  return node.rep.status().find((s) => s.url === url)
}

/** A node holding `n` entries of its own (written before replication starts). */
async function withEntries(n: number, opts: SyncNodeOptions = {}): Promise<SyncNode> {
  const node = await syncNode({ ...opts, start: false })
  for (let i = 0; i < n; i += 500)
    await node.log.appendBatch(
      Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ type: 'bulk', payload: { i: i + j } })),
    )
  node.start()
  return node
}

function recorder(): SyncLogger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, warn: (obj, msg) => void lines.push({ ...obj, msg }) }
}

const isStep2 = (m: WireMessage): m is Extract<WireMessage, { t: 'step2' }> => m.t === 'step2'

/** Bytes of sync updates and step 2s received from index `from` on, and whether a step 2 came. */
function answerBytes(c: HostileClient, from: number): { bytes: number; step2s: number } {
  let bytes = 0
  let step2s = 0
  for (const f of c.frames.slice(from)) {
    if (f.msg?.t === 'update' || f.msg?.t === 'step2') bytes += f.data.length
    if (f.msg?.t === 'step2') step2s++
  }
  return { bytes, step2s }
}

/**
 * A node v that dials p (so p's sled is preferred at v's inbound cap of 3 links) and whose cap
 * throwaway keys fill (no allow-list: any key that proves itself gets a link).
 */
async function capFullOfStrangers(): Promise<{ p: SyncNode; v: SyncNode; s: HostileClient[] }> {
  const p = await syncNode()
  const v = await syncNode({ peers: [p.url], maxConnections: 3 })
  await until(() => dialed(v, p.url)?.connected === true, 'v linked to p')
  const s: HostileClient[] = []
  for (let i = 0; i < 3; i++) s.push(await authed(v, STRANGERS[i] as KeyPair))
  return { p, v, s }
}

describe('handshake slots and the link cap', () => {
  it('full table: the busiest address loses its oldest pending handshake (4513); 429 past an address cap', async () => {
    const v = await syncNode({ maxHandshaking: { perAddress: 2, total: 4 } })
    const at = (a: string) => ({ localAddress: a })
    const pending = [
      await client(v, STRANGERS[0] as KeyPair, at('127.0.0.2')),
      await client(v, STRANGERS[0] as KeyPair, at('127.0.0.2')),
      await client(v, STRANGERS[1] as KeyPair, at('127.0.0.3')),
      await client(v, STRANGERS[1] as KeyPair, at('127.0.0.3')),
    ]
    for (const c of pending) await c.hello()
    // The table is full. A newcomer from another address is not refused: it takes the slot of
    // the oldest pending handshake of the address holding the most (a tie: the older one).
    const honest = await client(v, PEER, at('127.0.0.4'))
    expect(await pending[0]?.waitClose()).toEqual({
      code: CLOSE.HANDSHAKE_EVICTED,
      reason: 'handshake slot taken by a newer connection',
    })
    expect((await honest.handshake()).serverProofValid).toBe(true)
    // 127.0.0.3 still holds its 2 slots: a third from it is refused at the upgrade.
    await expect(client(v, STRANGERS[1] as KeyPair, at('127.0.0.3'))).rejects.toThrow(/429/)
    const ledger = v.rep.stats().ledger
    expect(ledger.peers.find((p) => p.id === '127.0.0.2')?.counts).toEqual({ [`close:${CLOSE.HANDSHAKE_EVICTED}`]: 1 })
    expect(ledger.peers.find((p) => p.id === '127.0.0.3')?.counts).toEqual({ 'http:429': 1 })
    expect(v.rep.stats().handshaking).toBe(3)
  })

  it('link cap: strangers refused (4512); a sled replaces its own link; preferred peers evict a stranger', async () => {
    const { p, v, s } = await capFullOfStrangers()
    const late = await client(v, STRANGERS[3] as KeyPair)
    await expect(late.handshake()).rejects.toThrow(`${CLOSE.LINK_LIMIT} link limit reached; retry later`)
    expect(late.messages.some((m) => m.t === 'ok')).toBe(false) // refused before the ok
    // A stranger's second link replaces its first (a restarting peer whose old link looks alive).
    const again = await authed(v, STRANGERS[0] as KeyPair)
    expect(await s[0]?.waitClose()).toEqual({
      code: CLOSE.LINK_LIMIT,
      reason: 'replaced by a newer link of the same sled',
    })
    // The peer v dials gets in: the oldest stranger left goes.
    const peer = await authed(v, p.keys)
    expect(await s[1]?.waitClose()).toEqual({ code: CLOSE.LINK_LIMIT, reason: 'evicted for a preferred peer' })
    expect(peer.open && again.open && s[2]?.open).toBe(true)
    const ledger = v.rep.stats().ledger
    expect(ledger.totals[`close:${CLOSE.LINK_LIMIT}`]).toBe(3)
  })

  it('a signed successor of a peer this node dials is preferred like it; one whose chain fails is not', async () => {
    const { p, v, s } = await capFullOfStrangers()
    // Chains that prove nothing about p: NEXT's succession of p unendorsed, one endorsed by a
    // throwaway key, one naming p whose endorsement is the throwaway's, and another sled's.
    const forged = successionBody(NEXT.sled, STRANGERS[4] as KeyPair, 5)
    const refused: Array<[string, string]> = [
      ['unendorsed', successionRecord(NEXT, p.keys.sled, 5)],
      ['endorsed by a throwaway key', successionRecord(NEXT, STRANGERS[4] as KeyPair, 5)],
      [
        'endorsement forged',
        signEntry(NEXT, { sled: NEXT.sled, seq: 0, ts: TEST_TS, ...forged, predecessor: p.keys.sled } as never),
      ],
      ['another sled’s', successionRecord(STRANGERS[5] as KeyPair, p.keys, 5)],
    ]
    for (const [name, record] of refused) {
      const c = await client(v, NEXT)
      const got = await c.handshake({ chain: [record] }).then(
        () => 'linked',
        (err: Error) => err.message,
      )
      expect([name, got]).toEqual([name, expect.stringContaining(`${CLOSE.LINK_LIMIT} link limit reached`)])
    }
    expect(s.map((c) => c.open)).toEqual([true, true, true])
    // p's signed successor gets a link at the full cap: the oldest throwaway goes.
    const next = await client(v, NEXT)
    expect((await next.handshake({ chain: [successionRecord(NEXT, p.keys, 5)] })).serverProofValid).toBe(true)
    expect(await s[0]?.waitClose()).toEqual({ code: CLOSE.LINK_LIMIT, reason: 'evicted for a preferred peer' })
    // And it keeps it like p would: p itself dialing in evicts the next throwaway, not NEXT.
    const peer = await authed(v, p.keys)
    expect(await s[1]?.waitClose()).toEqual({ code: CLOSE.LINK_LIMIT, reason: 'evicted for a preferred peer' })
    expect([next.open, peer.open, s[2]?.open]).toEqual([true, true, true])
  })

  it('with an allow-list, a listed sled’s signed successor holds its link at the cap like a listed sled', async () => {
    const [a, b, c] = LISTED as [KeyPair, KeyPair, KeyPair]
    const v = await syncNode({ auth: { allow: new Set([a.sled, b.sled, c.sled]) }, maxConnections: 2 })
    // NEXT is not listed: its chain from a admits it.
    const next = await client(v, NEXT)
    expect((await next.handshake({ chain: [successionRecord(NEXT, a, 5)] })).serverProofValid).toBe(true)
    await authed(v, b)
    // Every link at the cap is preferred, so a listed newcomer evicts no one (it used to evict
    // the successor as a stranger's link); a chain that does not verify admits no one at all.
    const late = await client(v, c)
    await expect(late.handshake()).rejects.toThrow(`${CLOSE.LINK_LIMIT} link limit reached; retry later`)
    const liar = await client(v, STRANGERS[5] as KeyPair)
    await liar.handshake({ chain: [successionRecord(STRANGERS[5] as KeyPair, a.sled, 5)] }).catch(() => undefined)
    expect((await liar.waitClose()).code).toBe(CLOSE.NOT_ALLOWED)
    expect(next.open).toBe(true)
    // The successor's own new link replaces its old one, as any sled's does.
    const again = await client(v, NEXT)
    expect((await again.handshake({ chain: [successionRecord(NEXT, a, 5)] })).serverProofValid).toBe(true)
    expect(await next.waitClose()).toEqual({
      code: CLOSE.LINK_LIMIT,
      reason: 'replaced by a newer link of the same sled',
    })
  })

  it('a 503 past every slot and a reset at each refusal path leave the node running', async () => {
    const v = await syncNode({ maxConnections: 1, maxHandshaking: { perAddress: 1, total: 1 } })
    await authed(v, STRANGERS[0] as KeyPair)
    await client(v, STRANGERS[1] as KeyPair, { localAddress: '127.0.0.2' }) // holds the one slot
    await expect(client(v, STRANGERS[2] as KeyPair, { localAddress: '127.0.0.3' })).rejects.toThrow(/503/)
    // The same refusals, reset by the client as soon as the answer arrives: an 'error' on a
    // socket nobody listens to would be an uncaught exception in this very process.
    for (const path of ['/v1/sync', '/nope']) {
      await new Promise<void>((resolve) => {
        const sock: Socket = createConnection({ port: v.port, host: '127.0.0.1', localAddress: '127.0.0.4' }, () => {
          sock.write(
            `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
          )
        })
        sock.on('error', () => resolve())
        sock.once('data', () => {
          sock.resetAndDestroy()
          resolve()
        })
      })
    }
    await sleep(100)
    expect(v.rep.stats().ledger.totals['http:503']).toBeGreaterThanOrEqual(2)
    const e = await v.log.append({ type: 'alive', payload: null })
    expect(e.seq).toBe(0)
  })
})

describe('links that go silent or never answer', () => {
  it('an authenticated link silent for idleMs is closed with 4510; one that keeps talking stays', async () => {
    const v = await syncNode({ limits: { idleMs: 300 } })
    const silent = await authed(v, STRANGERS[0] as KeyPair)
    const chatty = await authed(v, STRANGERS[1] as KeyPair)
    const talk = setInterval(() => void chatty.send(encodeAwarenessKeepAlive()), 100)
    onTestFinished(() => clearInterval(talk))
    const closed = await silent.waitClose(3000)
    expect(closed.code).toBe(CLOSE.IDLE)
    expect(closed.reason).toMatch(/^no message for \d+ s$/)
    await sleep(500)
    expect(chatty.open).toBe(true)
    expect(v.rep.stats().ledger.peers.find((p) => p.id === STRANGERS[0]?.sled)?.counts).toEqual({
      [`close:${CLOSE.IDLE}`]: 1,
    })
  })

  it('a server that talks but never answers our step 1 is dropped (4511) and redialed', async () => {
    const srv = await HostileServer.start({
      keys: EVIL,
      script: async (conn) => {
        await conn.handshake()
        const t = setInterval(() => void conn.send(encodeAwarenessKeepAlive()), 50)
        void conn.closed.then(() => clearInterval(t))
      },
    })
    onTestFinished(() => srv.stop())
    const v = await syncNode({ peers: [srv.url], limits: { answerTimeoutMs: 400 }, maxBackoffMs: 100 })
    const first = await srv.waitConnections(1)
    expect((await first.waitClose(3000)).code).toBe(CLOSE.SYNC_STALLED)
    await srv.waitConnections(2)
    expect(dialed(v, srv.url)?.lastError).toMatchObject({ code: `CLOSE_${CLOSE.SYNC_STALLED}` })
    expect(dialed(v, srv.url)?.lastError?.reason).toMatch(/^closed by this node: step 1 unanswered/)
  })
})

describe('answers to step 1: coalesced per link, taking turns across links', () => {
  it('asking again for what the link sent gets it once more (a rewind a minute), then nothing', async () => {
    const v = await withEntries(2000)
    const c = await authed(v, STRANGERS[0] as KeyPair)
    const ask = async (): Promise<{ bytes: number; step2s: number }> => {
      const from = c.frames.length
      await c.sendStep1(new Uint8Array([0]))
      await c.waitFor(() => answerBytes(c, from).step2s > 0, 'step 2')
      return answerBytes(c, from)
    }
    const full = await ask()
    expect(full.bytes).toBeGreaterThan(2000 * 100)
    const rewind = await ask() // the digest refetch's case: honored
    expect(rewind.bytes).toBeGreaterThanOrEqual(full.bytes * 0.99)
    const flood = []
    for (let i = 0; i < 50; i++) flood.push(await ask())
    const flooded = flood.reduce((n, a) => n + a.bytes, 0)
    console.log(`[coalesce] full answer ${full.bytes} B; 50 more asks answered with ${flooded} B`)
    expect(flooded).toBeLessThan(50 * 10) // empty step 2s only
    const stats = v.rep.status().find((s) => s.sled === STRANGERS[0]?.sled)
    expect(stats?.entriesCoalesced).toBe(50 * 2000)
    // A new link of the same sled (a peer that lost its disk and came back) gets everything.
    const back = await authed(v, STRANGERS[0] as KeyPair)
    const from = back.frames.length
    await back.sendStep1(new Uint8Array([0]))
    await back.waitFor(() => answerBytes(back, from).step2s > 0, 'step 2 on the new link')
    expect(answerBytes(back, from).bytes).toBeGreaterThanOrEqual(full.bytes * 0.99)
  })

  it('a burst of asks: the honored rewind is answered whole, not cancelled by the rest, which coalesce', async () => {
    const v = await withEntries(2000)
    const c = await authed(v, STRANGERS[1] as KeyPair)
    await c.sendStep1(new Uint8Array([0]))
    await c.waitFor(() => answerBytes(c, 0).step2s > 0, 'the first answer')
    const full = answerBytes(c, 0).bytes
    const from = c.frames.length
    c.sendBurst(Array.from({ length: 200 }, () => encodeStep1(new Uint8Array([0]))))
    // The rewind's answer ends in a step 2; wait until the frames stop coming.
    let seen = -1
    while (seen !== c.frames.length) {
      seen = c.frames.length
      await sleep(300)
    }
    const burst = answerBytes(c, from)
    console.log(`[coalesce] full answer ${full} B; a burst of 200 asks answered with ${burst.bytes} B`)
    expect(burst.bytes).toBeGreaterThanOrEqual(full * 0.99)
    expect(burst.bytes).toBeLessThan(full * 1.1)
  })

  it('many links asking at once: at most maxActive answers stream at a time, and every one completes', async () => {
    const v = await withEntries(3000, { answers: { maxActive: 2, sliceBytes: 256 * 1024 } })
    const clients = await Promise.all(STRANGERS.map((k) => authed(v, k)))
    let most = 0
    const sample = setInterval(() => (most = Math.max(most, v.rep.stats().answers.active)), 1)
    onTestFinished(() => clearInterval(sample))
    const starts = clients.map((c) => c.frames.length)
    for (const c of clients) void c.sendStep1(new Uint8Array([0]))
    await until(() => clients.every((c, i) => answerBytes(c, starts[i] ?? 0).step2s > 0), 'every answer', 20_000)
    clearInterval(sample)
    const sizes = clients.map((c, i) => answerBytes(c, starts[i] ?? 0).bytes)
    expect(Math.min(...sizes)).toBe(Math.max(...sizes))
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(2)
  })
})

describe('the ledger', () => {
  it('a peer closed for violations leaves a trace that outlives the link and a restart, and a warning', async () => {
    const logger = recorder()
    const v = await syncNode({ logger })
    const c = await authed(v, EVIL)
    for (let i = 0; i < 3; i++) await c.send(new Uint8Array([0xff, 0xff]))
    expect((await c.waitClose()).code).toBe(CLOSE.VIOLATIONS)
    const big = await authed(v, STRANGERS[0] as KeyPair, { maxPayload: 64 * 1024 * 1024 })
    await big.send(new Uint8Array(2 * 1024 * 1024)) // over the 1 MiB + 64 limit: ws closes with 1009
    expect((await big.waitClose()).code).toBe(CLOSE.TOO_LARGE)
    await until(() => v.rep.status().every((s) => s.sled !== EVIL.sled), 'the link gone from status')
    const row = v.rep.stats().ledger.peers.find((p) => p.id === EVIL.sled)
    expect(row?.counts).toEqual({ PEER_PROTOCOL: 3, [`close:${CLOSE.VIOLATIONS}`]: 1 })
    expect(v.rep.stats().ledger.peers.find((p) => p.id === STRANGERS[0]?.sled)?.counts).toEqual({ 'close:1009': 1 })
    expect(logger.lines).toContainEqual(
      expect.objectContaining({ msg: 'replication link closed by this node', peer: EVIL.sled, code: CLOSE.VIOLATIONS }),
    )
    await v.stop()
    const again = await syncNode({ dir: v.dir })
    await sleep(50) // the ledger loads as replication starts
    expect(again.rep.stats().ledger.peers.find((p) => p.id === EVIL.sled)?.counts).toEqual(row?.counts)
  })
})

describe('why a dial failed (status lastError)', () => {
  const failing = async (url: string, opts: SyncNodeOptions = {}): Promise<PeerStatus> => {
    const v = await syncNode({ peers: [url], maxBackoffMs: 200, ...opts })
    await until(() => dialed(v, url)?.lastError !== undefined, `a failed dial of ${url}`, 10_000)
    return dialed(v, url) as PeerStatus
  }

  it('a refused connection, an unknown host, an HTTP refusal of the upgrade, a 44xx close', async () => {
    const closed = await failing(`ws://127.0.0.1:${await freePort()}`)
    expect(closed).toMatchObject({ connected: false, lastError: { code: 'ECONNREFUSED' } })
    expect(closed.lastError?.at).toBeGreaterThan(Date.now() - 10_000)
    const unknown = await failing('ws://no-such-host.invalid:7400')
    expect(['ENOTFOUND', 'EAI_AGAIN']).toContain(unknown.lastError?.code)
    const http = createServer()
    http.on('upgrade', (_req, socket: Socket) =>
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'),
    )
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    onTestFinished(() => new Promise<void>((r) => http.close(() => r())))
    const busy = await failing(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`)
    expect(busy.lastError).toMatchObject({ code: 'HTTP_429', reason: 'Unexpected server response: 429' })
    const w = await syncNode({ auth: { allow: new Set([PEER.sled]) } })
    const refused = await failing(w.url)
    expect(refused.lastError?.code).toBe(`CLOSE_${CLOSE.NOT_ALLOWED}`)
    expect(refused.lastError?.reason).toMatch(/^closed by the peer: sled [0-9a-f]{16}… is not on the allow-list/)
    expect(refused.refused?.code).toBe(CLOSE.NOT_ALLOWED)
  })

  it('a link whose outbound traffic is silently dropped is found by its pings and dropped (NO_PONG)', async () => {
    const w = await syncNode()
    const proxy = new FaultProxy({ targetPort: w.port })
    await proxy.start()
    onTestFinished(() => proxy.stop())
    const v = await syncNode({ peers: [proxy.wsUrl], pingMs: 200, maxBackoffMs: 200 })
    await until(() => dialed(v, proxy.wsUrl)?.synced === true, 'v synced with w')
    proxy.blackhole('forward') // what v sends is lost; what w sends still arrives
    const t0 = Date.now()
    await until(() => dialed(v, proxy.wsUrl)?.connected === false, 'the link dropped', 5000)
    console.log(`[one-way blackhole] link dropped after ${Date.now() - t0} ms (ping every 200 ms)`)
    expect(dialed(v, proxy.wsUrl)?.lastError?.code).toBe('NO_PONG')
    proxy.heal()
    await until(() => dialed(v, proxy.wsUrl)?.connected === true, 'relinked after the heal', 5000)
  })
})

describe('peers over TLS (wss://)', () => {
  const wss = () => syncNode({ tls: { cert: NODE_CERT, key: NODE_KEY } })

  it('a pinned self-signed peer links and syncs; a CA bundle holding its certificate works too', async () => {
    const w = await wss()
    await w.log.append({ type: 'over-tls', payload: 1 })
    const pinned = await syncNode({ peers: [w.url], peerTls: { pins: [pinOf(NODE_CERT)] } })
    await until(() => pinned.log.length(w.log.sled) === 1, 'synced over wss with a pin')
    const ca = await syncNode({ peers: [w.url], peerTls: { caFile: tlsFile('ca.pem') } })
    await until(() => ca.log.length(w.log.sled) === 1, 'synced over wss with a CA file')
    expect(dialed(ca, w.url)?.lastError).toBeUndefined()
  })

  it('a wrong pin, a wrong CA and the system roots are refused before any sledlog byte, and say why', async () => {
    const w = await wss()
    const pin = await syncNode({ peers: [w.url], peerTls: { pins: [pinOf(OTHER_CERT)] }, maxBackoffMs: 200 })
    await until(() => dialed(pin, w.url)?.lastError !== undefined, 'the pin refused')
    expect(dialed(pin, w.url)?.lastError?.code).toBe('TLS_PIN_MISMATCH')
    const ca = await syncNode({ peers: [w.url], peerTls: { caFile: tlsFile('stranger.pem') }, maxBackoffMs: 200 })
    const roots = await syncNode({ peers: [w.url], maxBackoffMs: 200 })
    for (const n of [ca, roots]) {
      await until(() => dialed(n, w.url)?.lastError !== undefined, 'the certificate refused')
      expect(dialed(n, w.url)?.lastError?.code).toMatch(/CERT|UNABLE_TO_VERIFY/)
    }
    await sleep(300)
    // w never saw a proof from any of them.
    expect(w.rep.status().filter((s) => s.sled !== null)).toEqual([])
    expect(w.log.length(pin.log.sled)).toBe(0)
  })

  it('bad trust settings fail at construction with CONFIG_INVALID', async () => {
    const { log } = await testLog()
    const keys = testKeys(420)
    const make = (peerTls: object) => () =>
      new Replicator({ log, keys, peers: [], auth: {}, peerTls: peerTls as { pins: string[] } })
    expect(make({ pins: ['not-a-fingerprint'] })).toThrow(/CONFIG_INVALID|not a SHA-256 fingerprint/)
    expect(make({ caFile: '/nonexistent/ca.pem' })).toThrow(/peer TLS CA file/)
    expect(make({ caFile: `${TLS_DIR}README.md` })).toThrow(/holds no PEM certificate/)
    // a pin in any usual spelling is fine
    expect(make({ pins: [pinOf(NODE_CERT).toLowerCase().replaceAll(':', '')] })).not.toThrow()
  })
})

describe('unsigned claims', () => {
  it('a step 1 claiming huge heads for the node and another sled reports no hole and no missing range', async () => {
    const v = await withEntries(3)
    const other = signedRun(PEER, 0, 2)
    expect((await v.log.applyUpdate(encodeRuns([other]), 'setup')).ok).toBe(true)
    const c = await authed(v, STRANGERS[0] as KeyPair)
    const lie = new Map([
      [v.log.clientId, 1e15],
      [other.client, 1e15],
    ])
    await c.send(encodeStep1(encodeStateVector(lie)))
    await c.waitFor(() => c.messages.some(isStep2), 'the answer')
    await sleep(50)
    expect(v.log.status().missing).toEqual({})
    expect(v.log.missingRange(v.log.sled)).toBeNull()
  })
})
