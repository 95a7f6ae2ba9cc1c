/**
 * FaultProxy with real sockets: a target server on localhost, clients dialing the proxy.
 */
import { createHash } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { FaultProxy } from '../../src/harness/proxy.js'
import { prng, testSeed } from '../helpers/seed.js'

/** A target that echoes, or records what it receives and greets each client. */
interface Target {
  server: Server
  port: number
  received: Buffer[]
  sockets: Set<Socket>
  /** Connections whose client sent FIN. */
  ends: number
}

async function target(mode: 'echo' | 'record', greeting?: string): Promise<Target> {
  const t: Target = { server: createServer(), port: 0, received: [], sockets: new Set(), ends: 0 }
  t.server.on('connection', (s) => {
    t.sockets.add(s)
    s.on('end', () => t.ends++)
    s.on('close', () => t.sockets.delete(s))
    s.on('error', () => undefined)
    if (greeting !== undefined) s.write(greeting)
    s.on('data', (d: Buffer) => {
      if (mode === 'echo') s.write(d)
      else t.received.push(d)
    })
  })
  await new Promise<void>((r) => t.server.listen(0, '127.0.0.1', r))
  t.port = (t.server.address() as AddressInfo).port
  onTestFinished(async () => {
    for (const s of t.sockets) s.destroy()
    await new Promise((r) => t.server.close(r))
  })
  return t
}

async function proxyTo(port: number, random?: () => number): Promise<FaultProxy> {
  const p = new FaultProxy({ targetPort: port, label: 'test', ...(random === undefined ? {} : { random }) })
  await p.start()
  onTestFinished(() => p.stop())
  return p
}

/** A client with everything it received collected, and how it ended. */
interface Client {
  socket: Socket
  data: () => Buffer
  ended: Promise<'close' | 'error'>
}

async function dial(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  const ended = new Promise<'close' | 'error'>((resolve) => {
    let errored = false
    socket.on('error', () => (errored = true))
    socket.on('close', () => resolve(errored ? 'error' : 'close'))
  })
  onTestFinished(() => {
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, data: () => Buffer.concat(chunks), ended }
}

/** Dials and reports how the connection ended, when the proxy refuses it. */
async function dialRefused(port: number): Promise<'reset' | 'open'> {
  const socket = connect(port, '127.0.0.1')
  onTestFinished(() => {
    socket.destroy()
  })
  return new Promise((resolve) => {
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNRESET' ? 'reset' : 'open'))
    socket.on('data', () => resolve('open'))
    setTimeout(() => resolve('open'), 2000)
  })
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('FaultProxy', () => {
  it('forwards bytes both ways intact, with backpressure on a large transfer', async () => {
    const t = await target('echo')
    const p = await proxyTo(t.port)
    const c = await dial(p.port)
    const payload = Buffer.alloc(4 * 1024 * 1024)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 8)) & 0xff
    c.socket.write(payload)
    await until(() => c.data().length >= payload.length, 20_000)
    expect(sha(c.data())).toBe(sha(payload))
    expect(p.stats).toMatchObject({
      accepted: 1,
      active: 1,
      delivered: { forward: payload.length, backward: payload.length },
    })
  })

  it('cut() resets open connections and refuses new ones until heal()', async () => {
    const t = await target('echo')
    const p = await proxyTo(t.port)
    const c = await dial(p.port)
    c.socket.write('before')
    await until(() => c.data().toString() === 'before')
    p.cut()
    expect(await c.ended).toBe('error') // a reset, not an orderly close
    await until(() => t.sockets.size === 0) // the target side was torn down too
    // New connections are accepted by the kernel, then reset without forwarding anything.
    expect(await dialRefused(p.port)).toBe('reset')
    expect(p.stats.refused).toBe(1)
    expect(p.stats.active).toBe(0)
    p.heal()
    const again = await dial(p.port)
    again.socket.write('after')
    await until(() => again.data().toString() === 'after')
  })

  it('blackhole() drops bytes both ways silently; heal() resets the connections that lost bytes', async () => {
    const t = await target('echo')
    const p = await proxyTo(t.port)
    const c = await dial(p.port)
    p.blackhole()
    c.socket.write('lost')
    await sleep(200)
    expect(c.data().length).toBe(0)
    expect(c.socket.destroyed).toBe(false) // the socket stays open: nobody notices
    expect(p.stats.dropped.forward).toBe(4)
    p.heal()
    // Its byte stream has a hole, so it is reset rather than resumed with missing bytes.
    expect(await c.ended).toBe('error')
    const fresh = await dial(p.port)
    fresh.socket.write('ok')
    await until(() => fresh.data().toString() === 'ok')
  })

  it('blackhole(direction) makes a one-way partition', async () => {
    const t = await target('record', 'hello')
    const p = await proxyTo(t.port)
    p.blackhole('forward')
    const c = await dial(p.port)
    await until(() => c.data().toString() === 'hello') // target → client still flows
    c.socket.write('unheard')
    await sleep(150)
    expect(Buffer.concat(t.received).length).toBe(0)

    p.heal()
    p.blackhole('backward')
    const d = await dial(p.port)
    d.socket.write('heard')
    await until(() => Buffer.concat(t.received).toString() === 'heard')
    await sleep(100)
    expect(d.data().length).toBe(0) // the greeting was swallowed
    expect(p.stats.dropped.backward).toBe(5)
  })

  it('latency(ms, jitter) delays each direction and keeps byte order', async () => {
    const seed = testSeed('proxy latency jitter')
    const t = await target('echo')
    const p = await proxyTo(t.port, prng(seed))
    const c = await dial(p.port)
    p.latency(100, 0)
    const t0 = performance.now()
    c.socket.write('ping')
    await until(() => c.data().toString() === 'ping')
    const rtt = performance.now() - t0
    expect(rtt).toBeGreaterThanOrEqual(195) // 100 ms each way
    expect(rtt).toBeLessThan(1000)

    p.latency(5, 40, 'forward')
    const d = await dial(p.port)
    const parts: string[] = []
    for (let i = 0; i < 100; i++) {
      const s = `<${i}>`
      parts.push(s)
      d.socket.write(s)
      if (i % 10 === 0) await sleep(3)
    }
    const want = parts.join('')
    await until(() => d.data().length === want.length)
    expect(d.data().toString()).toBe(want)
  })

  it('bandwidth(bytesPerSec) throttles a direction', async () => {
    const t = await target('record')
    const p = await proxyTo(t.port)
    p.bandwidth(256 * 1024, 'forward')
    const c = await dial(p.port)
    const payload = Buffer.alloc(192 * 1024, 7)
    const t0 = performance.now()
    c.socket.write(payload)
    await until(() => Buffer.concat(t.received).length === payload.length, 10_000)
    const ms = performance.now() - t0
    expect(ms).toBeGreaterThanOrEqual(650) // 192 KiB at 256 KiB/s = 750 ms
    expect(ms).toBeLessThan(3000)
    p.bandwidth(null)
    const t1 = performance.now()
    c.socket.write(payload)
    await until(() => Buffer.concat(t.received).length === 2 * payload.length, 10_000)
    expect(performance.now() - t1).toBeLessThan(400)
  })

  it('resets the dialer when the target is down, and reaches a new target after retarget()', async () => {
    const gone = await target('echo')
    const deadPort = gone.port
    await new Promise((r) => gone.server.close(r))
    const p = await proxyTo(deadPort)
    const c = await dial(p.port)
    expect(await c.ended).toBe('error')
    const t = await target('echo')
    p.retarget(t.port)
    const d = await dial(p.port)
    d.socket.write('x')
    await until(() => d.data().toString() === 'x')
  })

  it('forwards an orderly close (FIN) after the bytes before it, and stop() ends everything', async () => {
    const t = await target('record')
    const p = await proxyTo(t.port)
    p.latency(50)
    const c = await dial(p.port)
    c.socket.end('last words')
    await until(() => t.ends === 1)
    expect(Buffer.concat(t.received).toString()).toBe('last words')
    const port = p.port
    const d = await dial(port)
    await p.stop()
    expect(await d.ended).toBe('error')
    await expect(dial(port).catch((err: NodeJS.ErrnoException) => err.code)).resolves.toBe('ECONNREFUSED')
  })
})
