/**
 * Helpers of the multi-node benchmark groups (replication, compare, scaling): a harness
 * {@link Cluster} of real node processes driven through the public HTTP API, convergence
 * polling, and an SSE watcher that timestamps when each entry becomes visible on a node.
 */
import { verify, sign, randomBytes } from 'node:crypto'
import { request, type IncomingMessage, type ClientRequest } from 'node:http'
import { SseParser } from '../../src/cli/sse-parser.js'
import { keyPairFromSeed, privateKeyObject, publicKeyObject } from '../../src/core/signing.js'
import { Cluster, type ClusterNode, type Topology } from '../../src/harness/cluster.js'
import { makeEvent, measureRate, now, type BenchContext } from './harness.js'

/** 10000 → "10k", 1000000 → "1M". */
export const label = (n: number): string =>
  n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n)

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

let counter = 0
/** The next benchmark event (same shape and size as the single-node group's). */
export const nextEvent = (): { type: string; payload: unknown } => makeEvent(counter++)

/** Body of POST /v1/events for `n` fresh events, pre-serialized outside any timed region when wanted. */
export function eventsBody(n: number): string {
  const list: Array<{ type: string; payload: unknown }> = new Array(n)
  for (let i = 0; i < n; i++) list[i] = nextEvent()
  return JSON.stringify(list)
}

/**
 * POSTs a pre-serialized body to /v1/events and returns the raw response text (201 expected),
 * unparsed: the benchmark process also runs the harness's link proxies, so it stays light.
 */
export async function postRaw(baseUrl: string, body: string): Promise<string> {
  const res = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
  })
  const text = await res.text()
  if (res.status !== 201) throw new Error(`POST ${baseUrl}/v1/events → ${res.status}: ${text.slice(0, 300)}`)
  return text
}

/** Seq of the single entry a POST of one event answered with. */
export function seqOfAnswer(text: string): number {
  const m = /"seq":(\d+)/.exec(text)
  if (m === null) throw new Error(`no seq in answer ${text.slice(0, 200)}`)
  return Number(m[1])
}

/** Appends `n` events to a node in HTTP batches of `batch` (each awaited); returns wall ms. */
export async function appendVia(baseUrl: string, n: number, batch: number): Promise<number> {
  const t0 = now()
  for (let done = 0; done < n; ) {
    const k = Math.min(batch, n - done)
    await postRaw(baseUrl, eventsBody(k))
    done += k
  }
  return now() - t0
}

interface StatusLite {
  heads: Record<string, number>
  entries: number
  duplicates: number
  appendsHeld: boolean
  rejected: { total: number; byCode: Record<string, number> }
  peers: Array<{ connected: boolean; synced?: boolean }>
}

/** GET /v1/status of a node (only the fields the benchmarks read). */
export async function statusOf(baseUrl: string): Promise<StatusLite> {
  const res = await fetch(`${baseUrl}/v1/status`, { signal: AbortSignal.timeout(30_000) })
  if (!res.ok) throw new Error(`GET ${baseUrl}/v1/status → ${res.status}`)
  return (await res.json()) as StatusLite
}

/**
 * Rejected updates that an honest run must not have: everything but UPDATE_GAP, which is
 * replication's normal signal that a live update overtook a range still on its way (answered
 * with a step 1, PROTOCOL.md §8.3).
 */
export function honestRejections(st: StatusLite): number {
  return st.rejected.total - (st.rejected.byCode['UPDATE_GAP'] ?? 0)
}

/**
 * Polls the nodes' status until each holds every sled of `want` up to the given head; returns,
 * per node, the ms (since `t0`) at which it was first seen complete. Polls every `intervalMs`,
 * so each time is late by at most that much.
 */
export async function waitHeads(
  urls: readonly string[],
  want: Readonly<Record<string, number>>,
  t0: number,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<number[]> {
  const done: Array<number | undefined> = urls.map(() => undefined)
  const deadline = now() + (opts.timeoutMs ?? 600_000)
  const wanted = Object.entries(want)
  for (;;) {
    await Promise.all(
      urls.map(async (u, i) => {
        if (done[i] !== undefined) return
        const st = await statusOf(u)
        if (wanted.every(([sled, head]) => (st.heads[sled] ?? -1) >= head)) done[i] = now() - t0
      }),
    )
    if (done.every((d) => d !== undefined)) return done as number[]
    if (now() > deadline) {
      const st = await Promise.all(urls.map(statusOf))
      throw new Error(
        `nodes did not converge within ${opts.timeoutMs ?? 600_000} ms; ` +
          `heads: ${JSON.stringify(st.map((s) => s.heads))}, want ${JSON.stringify(want)}`,
      )
    }
    await sleep(opts.intervalMs ?? 20)
  }
}

/** Waits until every node accepts appends and every one of its links is connected and synced. */
export async function waitReady(urls: readonly string[], links: number, timeoutMs = 60_000): Promise<void> {
  const deadline = now() + timeoutMs
  for (;;) {
    const st = await Promise.all(urls.map(statusOf))
    if (st.every((s) => !s.appendsHeld && s.peers.filter((p) => p.connected && p.synced === true).length >= links))
      return
    if (now() > deadline)
      throw new Error(
        `cluster not ready within ${timeoutMs} ms: ` +
          JSON.stringify(st.map((s) => ({ held: s.appendsHeld, peers: s.peers }))),
      )
    await sleep(50)
  }
}

/**
 * A GET /v1/stream subscription that records, per seq of one sled, when the entry arrived
 * (ms, {@link now} clock). Starts at `from=now`; {@link open} resolves once the stream is live.
 */
export class StreamWatch {
  readonly arrivals = new Map<number, number>()
  #req: ClientRequest | null = null
  #res: IncomingMessage | null = null
  #waiters: Array<{ seq: number; resolve: () => void }> = []
  #max = -1
  #lagged = 0

  constructor(
    readonly baseUrl: string,
    readonly sled: string,
  ) {}

  /** `lagged` notices received (the stream fell behind; arrivals after one are late). */
  get lagged(): number {
    return this.#lagged
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = new URL(`${this.baseUrl}/v1/stream?from=now&buffer=10000&sled=${this.sled}`)
      const req = request(url, { method: 'GET', headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url.pathname} → ${res.statusCode}`))
        this.#res = res
        res.setEncoding('utf8')
        const parser = new SseParser()
        let live = false
        res.on('data', (chunk: string) => {
          const t = now()
          for (const ev of parser.feed(chunk)) {
            if (ev.event === 'entry') {
              const m = /"seq":(\d+)/.exec(ev.data)
              if (m === null) continue
              const seq = Number(m[1])
              if (!this.arrivals.has(seq)) this.arrivals.set(seq, t)
              if (seq > this.#max) this.#max = seq
            } else if (ev.event === 'live' && !live) {
              live = true
              resolve()
            } else if (ev.event === 'lagged') this.#lagged++
          }
          if (this.#waiters.length > 0) {
            this.#waiters = this.#waiters.filter((w) => {
              if (this.#max >= w.seq) w.resolve()
              return this.#max < w.seq
            })
          }
        })
        res.on('error', () => undefined)
      })
      req.on('error', reject)
      req.end()
      this.#req = req
    })
  }

  /** Resolves once an entry with seq ≥ `seq` arrived (or rejects after `timeoutMs`). */
  until(seq: number, timeoutMs = 120_000): Promise<void> {
    if (this.#max >= seq) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.baseUrl}: seq ${seq} not seen within ${timeoutMs} ms (max ${this.#max})`)),
        timeoutMs,
      )
      this.#waiters.push({
        seq,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  close(): void {
    this.#res?.destroy()
    this.#req?.destroy()
  }
}

/** CLI arguments every benchmark node gets: quiet logs (a log line per link event is noise here). */
export const NODE_EXTRA_ARGS = ['--log-level', 'warn'] as const

/** Starts a cluster of `size` node processes under a fresh temp dir. Always `stop()` it. */
export async function startCluster(ctx: BenchContext, size: number, topology: Topology = 'mesh'): Promise<Cluster> {
  const baseDir = await ctx.tempDir(`cluster-${size}`)
  const cluster = new Cluster({
    size,
    baseDir,
    topology,
    nodeSettings: () => ({ extraArgs: NODE_EXTRA_ARGS }),
    startTimeoutMs: 60_000,
    httpTimeoutMs: 60_000,
  })
  try {
    await cluster.start()
  } catch (err) {
    await cluster.stop()
    throw err
  }
  return cluster
}

/** Bytes delivered over every proxy link of a cluster, both directions. */
export function wireBytes(cluster: Cluster): number {
  let b = 0
  for (const p of cluster.proxies.values()) b += p.stats.delivered.forward + p.stats.delivered.backward
  return b
}

/** Per-node status lines for notes: duplicates received and rejections. */
export async function duplicatesOf(nodes: readonly ClusterNode[]): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => (await statusOf(n.url)).duplicates))
}

/**
 * The single-core Ed25519 verify rate (node:crypto, KeyObject reused) of this run: the crypto
 * group's figure when it ran, otherwise measured here for one second.
 */
export function verifyLimit(ctx: BenchContext): { rate: number; source: string } {
  const r = ctx.results().find((x) => x.scenario === 'crypto/node' && x.metric === 'verify')
  if (r !== undefined) return { rate: r.value, source: 'crypto/node verify' }
  const keys = keyPairFromSeed(randomBytes(32))
  const priv = privateKeyObject(keys.seed)
  const pub = publicKeyObject(keys.publicKey)
  const msgs = Array.from({ length: 64 }, (_, i) => Buffer.from(JSON.stringify(makeEvent(i))))
  const sigs = msgs.map((m) => sign(null, m, priv))
  let j = 0
  const rate = measureRate(1000, (k) => {
    for (let i = 0; i < k; i++) {
      const n = j++ % 64
      if (!verify(null, msgs[n] as Buffer, pub, sigs[n] as Buffer)) throw new Error('verify failed')
    }
  })
  return { rate: rate.perSecond, source: 'measured here (crypto group not run)' }
}
