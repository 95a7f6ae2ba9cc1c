/**
 * Child process of the "compare" group: plain Yjs replicated with y-websocket, no signing, no
 * guard, no persistence, unpatched yjs (as a user would run it). One process holds a minimal
 * y-protocols sync server (a hub doc over `ws`, relaying updates to every other connection) and
 * three client docs ("nodes") connected with y-websocket's WebsocketProvider on loopback.
 *
 * It pushes the same records sledlog stores (entry JSON with a placeholder signature) into a
 * `Y.Array` per writer and measures:
 * - live: n records pushed on client A in transactions of `batch` (each followed by a turn of
 *   the event loop), time until clients B and C hold them all;
 * - latency: paced single pushes on A, time until each arrives on B and C (array observer);
 * - catch-up: a fresh client D connects to the hub holding everything; time until D holds it.
 *
 * Usage: node --expose-gc --import tsx scripts/bench/yjs-ws-child.ts <n> <batch> <paced> <intervalMs>
 * Prints one JSON line.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket, { WebSocketServer } from 'ws'
import * as syncProtocol from 'y-protocols/sync'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { encodeEntryJson } from '../../src/core/entry.js'
import { rootNameOf, sledIdFromPublicKey } from '../../src/core/ids.js'
import { cpuMicros, latencySummary, makePayload, now } from './harness.js'

const [nArg, batchArg, pacedArg, intervalArg] = process.argv.slice(2)
if (nArg === undefined || batchArg === undefined || pacedArg === undefined || intervalArg === undefined) {
  throw new Error('usage: yjs-ws-child.ts <n> <batch> <paced> <intervalMs>')
}
const N = Number(nArg)
const BATCH = Number(batchArg)
const PACED = Number(pacedArg)
const INTERVAL = Number(intervalArg)

const sled = sledIdFromPublicKey(randomBytes(32))
const FAKE_SIG = 'A'.repeat(86)
let seq = 0
/** The record sledlog would store for the next seq, with a placeholder signature. */
const nextRecord = (): string => {
  const i = seq++
  return (
    FAKE_SIG +
    '.' +
    encodeEntryJson({ sled, seq: i, ts: Date.now(), kind: 'event', type: 'bench.event', payload: makePayload(i) })
  )
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

// ---- the hub: a minimal y-protocols sync server ----
const MSG_SYNC = 0
const MSG_AWARENESS = 1
const hub = new Y.Doc()
const conns = new Set<WebSocket>()
hub.on('update', (update: Uint8Array, origin: unknown) => {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_SYNC)
  syncProtocol.writeUpdate(enc, update)
  const msg = encoding.toUint8Array(enc)
  for (const c of conns) if (c !== origin && c.readyState === WebSocket.OPEN) c.send(msg)
})
const http = createServer((_req, res) => res.end())
const wss = new WebSocketServer({ server: http })
wss.on('connection', (ws) => {
  conns.add(ws)
  ws.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    const dec = decoding.createDecoder(bytes)
    const type = decoding.readVarUint(dec)
    if (type === MSG_SYNC) {
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, MSG_SYNC)
      syncProtocol.readSyncMessage(dec, enc, hub, ws)
      if (encoding.length(enc) > 1) ws.send(encoding.toUint8Array(enc))
    } else if (type === MSG_AWARENESS) {
      // Relay awareness to everyone (as y-websocket's server does): it keeps providers' liveness timers fed.
      for (const c of conns) if (c.readyState === WebSocket.OPEN) c.send(bytes)
    }
  })
  ws.on('close', () => conns.delete(ws))
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_SYNC)
  syncProtocol.writeSyncStep1(enc, hub)
  ws.send(encoding.toUint8Array(enc))
})
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`

// ---- the clients ----
interface Client {
  doc: Y.Doc
  arr: Y.Array<string>
  provider: WebsocketProvider
}
async function client(): Promise<Client> {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, 'bench', doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
  await new Promise<void>((resolve) => {
    if (provider.synced) resolve()
    else provider.once('sync', () => resolve())
  })
  return { doc, arr: doc.getArray<string>(rootNameOf(sled)), provider }
}
function close(c: Client): void {
  c.provider.awareness.destroy()
  c.provider.destroy()
  c.doc.destroy()
}
/** Resolves when `c` holds at least `n` records. */
function until(c: Client, n: number): Promise<void> {
  if (c.arr.length >= n) return Promise.resolve()
  return new Promise((resolve) => {
    const f = (): void => {
      if (c.arr.length >= n) {
        c.arr.unobserve(f)
        resolve()
      }
    }
    c.arr.observe(f)
  })
}

const a = await client()
const b = await client()
const c = await client()

// Warm-up (JIT): a few thousand records through the whole path.
for (let i = 0; i < 3; i++) {
  a.arr.push(Array.from({ length: 1000 }, nextRecord))
  await turn()
}
await Promise.all([until(b, seq), until(c, seq)])

// ---- live throughput ----
const liveBase = seq
const c0 = cpuMicros()
const t0 = now()
const live = Promise.all([until(b, liveBase + N), until(c, liveBase + N)])
let pushMs = 0
for (let done = 0; done < N; ) {
  const k = Math.min(BATCH, N - done)
  const items: string[] = new Array(k)
  for (let i = 0; i < k; i++) items[i] = nextRecord()
  a.arr.push(items)
  done += k
  await turn()
  pushMs = now() - t0
}
await live
const liveMs = now() - t0
const liveCpuUs = (cpuMicros() - c0) / N

// ---- latency: paced single pushes ----
const arrivals = [new Float64Array(PACED), new Float64Array(PACED)]
const sent = new Float64Array(PACED)
const pacedBase = seq
for (const [k, cl] of [b, c].entries()) {
  let seen = cl.arr.length
  cl.arr.observe(() => {
    const t = now()
    for (; seen < cl.arr.length; seen++) {
      const i = seen - pacedBase
      if (i >= 0 && i < PACED) (arrivals[k] as Float64Array)[i] = t
    }
  })
}
for (let i = 0; i < PACED; i++) {
  const t = now()
  sent[i] = t
  a.arr.push([nextRecord()])
  const wait = INTERVAL - (now() - t)
  if (wait > 0) await sleep(wait)
  else await turn()
}
await Promise.all([until(b, seq), until(c, seq)])
const lat: number[] = []
for (let i = 0; i < PACED; i++) for (const arr of arrivals) lat.push((arr[i] as number) - (sent[i] as number))
const latency = latencySummary(Float64Array.from(lat))

// ---- catch-up: a fresh client ----
const total = seq
const t1 = now()
const d = await client()
await until(d, total)
const catchUpMs = now() - t1

const updateBytes = Y.encodeStateAsUpdate(hub).length
for (const cl of [a, b, c, d]) close(cl)
for (const ws of conns) ws.terminate()
wss.close()
http.close()
process.stdout.write(
  JSON.stringify({
    n: N,
    batch: BATCH,
    liveMs,
    pushMs,
    liveCpuUs,
    paced: PACED,
    intervalMs: INTERVAL,
    latency,
    catchUpEntries: total,
    catchUpMs,
    updateBytes,
  }) + '\n',
)
process.exit(0)
