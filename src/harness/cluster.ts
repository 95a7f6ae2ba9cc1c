/**
 * A local cluster of real sledlog node processes for multi-node tests, the demo and the
 * harness command.
 *
 * Each node is a child process running `sledlog node` on its own port and data directory. Every
 * replication link (node i dials node j) goes through its own {@link FaultProxy}, so links can be
 * cut, blackholed, delayed or throttled one by one and partitions are made of proxy faults. The
 * cluster talks to the nodes only through their public HTTP API with `fetch`, as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { rm, mkdir, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { StoredEntry } from '../core/query.js'
import type { LogStatus } from '../log/sled-log.js'
import { initDataDir } from '../node/init-data-dir.js'
import { KEY_FILE, loadIdentity } from '../store/identity.js'
import type { NoRecoveryStatus } from '../http/recovery.js'
import type { AckStats } from '../http/acks.js'
import type { RecoveryStatus } from '../sync/recovery.js'
import type { PeerStatus } from '../sync/replicator.js'
import { canonicalChain, checkInvariants, type AckedAppend, type NodeLog, type ReadFlags } from './invariants.js'
import { FaultProxy } from './proxy.js'

/** A command that runs the sledlog CLI: executable, arguments and working directory. */
export interface NodeCommand {
  readonly command: string
  readonly args: readonly string[]
  readonly cwd: string
}

/**
 * Builds the command that runs `sledlog <cliArgs>`. The one place that knows how the CLI is
 * launched: from the TypeScript sources (this module loaded as .ts, e.g. under vitest or tsx)
 * it runs `node --import tsx src/cli/bin.ts` from the repository root, where tsx resolves; from
 * a build (this module loaded as .js under dist/) it runs the compiled `bin.js` with plain node.
 */
export function nodeCommand(cliArgs: readonly string[]): NodeCommand {
  const fromSources = import.meta.url.endsWith('.ts')
  const bin = fileURLToPath(new URL(fromSources ? '../cli/bin.ts' : '../cli/bin.js', import.meta.url))
  const root = fileURLToPath(new URL(fromSources ? '../../' : '../../../', import.meta.url))
  return {
    command: process.execPath,
    args: fromSources ? ['--import', 'tsx', bin, ...cliArgs] : [bin, ...cliArgs],
    cwd: root,
  }
}

/**
 * Who dials whom. `mesh`: every node dials every other (each node is configured with all the
 * others, as an operator would do); `star`: nodes 1… dial the hub, node 0; `chain`: node i dials
 * node i-1, so updates between the ends must be relayed; or explicit `[from, to]` dial edges.
 */
export type Topology = 'mesh' | 'star' | 'chain' | readonly (readonly [number, number])[]

/** The dial edges `[from, to]` of a topology over `size` nodes. */
export function edgesOf(topology: Topology, size: number): Array<[number, number]> {
  const edges: Array<[number, number]> = []
  if (topology === 'mesh') {
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) if (i !== j) edges.push([i, j])
  } else if (topology === 'star') {
    for (let i = 1; i < size; i++) edges.push([i, 0])
  } else if (topology === 'chain') {
    for (let i = 1; i < size; i++) edges.push([i, i - 1])
  } else {
    for (const [a, b] of topology) {
      if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b >= 0 && a < size && b < size && a !== b)) {
        throw new RangeError(`edge [${a}, ${b}] is not between two distinct nodes of ${size}`)
      }
      edges.push([a, b])
    }
  }
  return edges
}

/** Per-node settings; each overrides the cluster-wide one. */
export interface NodeSettings {
  /** Shared token (`--token`); null: none even if the cluster has one. */
  readonly token?: string | null
  /** `--recovery-timeout` in ms: when a recovering node warns (it never ends a recovery). */
  readonly recoveryTimeoutMs?: number
  /** `--recovery-quorum`. */
  readonly recoveryQuorum?: number
  /** More CLI arguments. */
  readonly extraArgs?: readonly string[]
}

/** Options of a {@link Cluster}. */
export interface ClusterOptions {
  /** Number of nodes. */
  readonly size: number
  /** Directory that receives one data directory per node (`node-<i>`); created if needed. */
  readonly baseDir: string
  /** Default `mesh`. */
  readonly topology?: Topology
  /** Shared token for every node. */
  readonly token?: string
  /** Give each node an allow-list (`--allow`) of the sleds it is linked with. */
  readonly allowList?: boolean
  /** `--recovery-timeout` for every node (default: the node's). */
  readonly recoveryTimeoutMs?: number
  /** `--recovery-quorum` for every node (default: the node's, every dialed peer). */
  readonly recoveryQuorum?: number
  /** Per-node overrides. */
  readonly nodeSettings?: (index: number) => NodeSettings
  /** How a node process is launched; default {@link nodeCommand}. */
  readonly command?: (cliArgs: readonly string[]) => NodeCommand
  /** How long a node may take to report it is listening. Default 30 s. */
  readonly startTimeoutMs?: number
  /** Timeout of each HTTP request to a node. Default 10 s. */
  readonly httpTimeoutMs?: number
  /** Random source for proxy jitter. */
  readonly random?: () => number
  /**
   * The 32-byte Ed25519 seed of node `index`'s key, written when its data dir has no key yet.
   * A seeded run passes one derived from its seed, so a replay runs as the same sled ids (and
   * reads in the same (sled, seq) order). Default: a fresh random key.
   */
  readonly keySeed?: (index: number) => Uint8Array
  /** Extra environment for the node processes. */
  readonly env?: Readonly<Record<string, string>>
  /** Admin public keys (`--admin-key`) every node is started with: their revocations retire a sled. */
  readonly adminKeys?: readonly string[]
  /** More CLI arguments for every node (after the cluster's own; per-node `extraArgs` follow). */
  readonly extraArgs?: readonly string[]
}

/** How many peers must prove they hold a write before it is answered (POST /v1/events?acks=N). */
export interface AppendOptions {
  /** `acks=N`; absent: the node's `--min-acks` (0 in the harness). */
  readonly acks?: number
  /** `ackTimeoutMs=MS`: how long the write waits for them. */
  readonly ackTimeoutMs?: number
}

/** An event as POST /v1/events takes it. */
export interface AppendEvent {
  readonly type: string
  readonly payload: unknown
  readonly id?: string
}

/** GET /v1/status of a node. */
export type NodeStatus = LogStatus & {
  readonly appendsHeld: boolean
  readonly peers: PeerStatus[]
  readonly recovery: RecoveryStatus | NoRecoveryStatus
  readonly acks: AckStats
}

/** How a node process ended. */
export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** One exit of a node process. */
export interface ExitRecord extends ExitInfo {
  /** When it exited (ms since the epoch). */
  readonly at: number
  /**
   * True when the cluster caused it (kill, restart, stop, a failed start); false when the
   * process died on its own: a crash.
   */
  readonly expected: boolean
}

/** A non-2xx answer of a node's API. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** The API's error code (e.g. `LOG_CLOSED`), if the body had one. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

/** Most stderr kept per node, across restarts (the tail is what explains a failure). */
const STDERR_KEEP = 64 * 1024

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** A free TCP port on `host` (bound and released; a tiny race with other processes remains). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  await new Promise<void>((res, rej) => {
    server.once('error', rej)
    server.listen(0, host, () => res())
  })
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((res) => server.close(() => res()))
  return port
}

/**
 * Polls `check` until it passes, then resolves; rejects with the last failure after
 * `timeoutMs`. `check` passes when it returns `true`, `undefined` or an empty list, and fails
 * when it returns `false`, a non-empty list of violations, or throws.
 */
export async function eventually(
  check: () => Promise<readonly string[] | boolean | undefined> | readonly string[] | boolean | undefined,
  timeoutMs: number,
  opts: { readonly intervalMs?: number; readonly what?: string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'never checked'
  for (;;) {
    try {
      const r = await check()
      if (r === true || r === undefined || (Array.isArray(r) && r.length === 0)) return
      last = r === false ? 'check returned false' : (r as readonly string[]).join('\n  ')
    } catch (err) {
      last = `check threw: ${err instanceof Error ? err.message : String(err)}`
    }
    if (Date.now() >= deadline) {
      throw new Error(`${opts.what ?? 'condition'} did not hold within ${timeoutMs} ms; last result:\n  ${last}`)
    }
    await sleep(opts.intervalMs ?? 150)
  }
}

/** One node of a {@link Cluster}: its process and a small client for its HTTP API. */
export class ClusterNode {
  /** Position in the cluster. */
  readonly index: number
  /** `node <index>`, used in messages and as the acknowledging node of appends. */
  readonly name: string
  /** Data directory (key file and `db/`). */
  readonly dataDir: string
  #port: number
  /** Every sled the node has run as, oldest first: a rotation or succession appends one. */
  readonly #sleds: string[] = []
  #child: ChildProcess | null = null
  #exited: Promise<ExitInfo> | null = null
  #stopped = false
  #stderr = ''
  #starts = 0
  #expectExit = false
  readonly #exits: ExitRecord[] = []
  readonly #cluster: Cluster
  readonly #httpTimeoutMs: number

  /** @internal created by {@link Cluster}. */
  constructor(cluster: Cluster, index: number, dataDir: string, port: number, httpTimeoutMs: number) {
    this.#cluster = cluster
    this.index = index
    this.name = `node ${index}`
    this.dataDir = dataDir
    this.#port = port
    this.#httpTimeoutMs = httpTimeoutMs
  }

  /** The node's real port (proxies forward here). */
  get port(): number {
    return this.#port
  }

  /**
   * The node's current sled id: known from its key file before it starts, and followed when it
   * moves to a successor key (a `succession` line on its stdout, or a status naming a new sled).
   */
  get sled(): string {
    return this.#sleds[this.#sleds.length - 1] ?? ''
  }

  /** Every sled the node has run as, oldest first (its own succession chain as the harness saw it). */
  get sleds(): readonly string[] {
    return this.#sleds
  }

  /** Records that the node runs as `sled` now (no-op for its current one). */
  #follow(sled: string): void {
    if (sled !== '' && sled !== this.sled) {
      this.#sleds.push(sled)
      this.#note(`--- ${this.name} now runs as sled ${sled.slice(0, 12)} ---\n`)
    }
  }

  /** Base URL of its HTTP API. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`
  }

  /** True while the process runs (also while it is SIGSTOPped). */
  get running(): boolean {
    return this.#child !== null
  }

  /** True between SIGSTOP and SIGCONT. */
  get paused(): boolean {
    return this.#stopped
  }

  /** Process id while running. */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** The tail of the node's stderr over all its runs. */
  get stderr(): string {
    return this.#stderr
  }

  /** Every exit of the node's processes so far, in order. */
  get exits(): readonly ExitRecord[] {
    return this.#exits
  }

  /**
   * Appends events over POST /v1/events (always as an array, atomically) and returns the stored
   * entries. Each is recorded in {@link Cluster.acked}: the node acknowledged it (with `acks`:
   * once that many peers proved they hold it).
   */
  async append(events: AppendEvent | readonly AppendEvent[], opts: AppendOptions = {}): Promise<StoredEntry[]> {
    const list = Array.isArray(events) ? events : [events as AppendEvent]
    const q = new URLSearchParams()
    if (opts.acks !== undefined) q.set('acks', String(opts.acks))
    if (opts.ackTimeoutMs !== undefined) q.set('ackTimeoutMs', String(opts.ackTimeoutMs))
    const path = q.size === 0 ? '/v1/events' : `/v1/events?${q.toString()}`
    const body = (await this.#request('POST', path, list)) as { entries: StoredEntry[] }
    const acks = opts.acks ?? 0
    for (const e of body.entries)
      this.#cluster.acked.push({ sled: e.sled, seq: e.seq, sig: e.sig, node: this.name, acks })
    return body.entries
  }

  /** GET /v1/status. */
  async status(): Promise<NodeStatus> {
    const st = (await this.#request('GET', '/v1/status')) as NodeStatus
    this.#follow(st.sled)
    return st
  }

  /**
   * The operator's decision on a recovering node (POST /v1/recovery/accept-head-risking-fork):
   * append from the `head` own entries it holds now, without proof.
   */
  async acceptHead(head: number): Promise<RecoveryStatus> {
    const body = (await this.#request('POST', '/v1/recovery/accept-head-risking-fork', { head })) as {
      recovery: RecoveryStatus
    }
    return body.recovery
  }

  /** GET /healthz; true when the node answers for the expected sled. */
  async healthy(): Promise<boolean> {
    try {
      const body = (await this.#request('GET', '/healthz')) as { ok?: boolean; sled?: string }
      return body.ok === true && body.sled !== undefined && this.#sleds.includes(body.sled)
    } catch {
      return false
    }
  }

  /** Reads the whole log: GET /v1/events page by page until `next` is null. */
  async readAll(pageSize = 10_000): Promise<StoredEntry[]> {
    return (await this.#readPages(pageSize)).entries
  }

  /**
   * Reads the whole log with what the reads say beside the entries: the `forked` and `retired`
   * maps of every page and the succession chain (GET /v1/sleds/SLED/chain) of every sled the
   * log or those maps name.
   */
  async read(pageSize = 10_000): Promise<{ entries: StoredEntry[]; flags: ReadFlags }> {
    const { entries, forked, retired } = await this.#readPages(pageSize)
    const sleds = new Set<string>([...entries.map((e) => e.sled), ...Object.keys(forked), ...Object.keys(retired)])
    const chains: Record<string, string> = {}
    for (const sled of [...sleds].sort()) {
      chains[sled] = canonicalChain(await this.#request('GET', `/v1/sleds/${sled}/chain`))
    }
    return { entries, flags: { forked, retired, chains } }
  }

  async #readPages(
    pageSize: number,
  ): Promise<{ entries: StoredEntry[]; forked: Record<string, number>; retired: Record<string, number> }> {
    const out: StoredEntry[] = []
    const forked: Record<string, number> = {}
    const retired: Record<string, number> = {}
    let after: string | null = null
    for (;;) {
      const q = new URLSearchParams({ limit: String(pageSize) })
      if (after !== null) q.set('after', after)
      const page = (await this.#request('GET', `/v1/events?${q.toString()}`)) as {
        entries: StoredEntry[]
        next: string | null
        forked?: Readonly<Record<string, number>>
        retired?: Readonly<Record<string, number>>
      }
      out.push(...page.entries)
      Object.assign(forked, page.forked)
      Object.assign(retired, page.retired)
      if (page.next === null) return { entries: out, forked, retired }
      if (page.next === after) throw new Error(`${this.name}: pagination did not advance past ${after}`)
      after = page.next
    }
  }

  /** @internal */
  async prepare(keySeed?: Uint8Array): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 })
    // Create the key up front so the sled id is known for allow-lists and checks (with its
    // store, as `sledlog keygen` does: a new node, not one recovering a lost disk).
    this.#follow((await initDataDir(this.dataDir, keySeed)).keys.sled)
  }

  /** @internal */
  setPort(port: number): void {
    this.#port = port
  }

  /**
   * @internal Starts the process and resolves once it listens and answers /healthz. The
   * health check also guarantees the CLI got past its startup code (signal handlers included)
   * before anyone signals it.
   */
  async start(cmd: NodeCommand, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<void> {
    if (this.#child !== null) throw new Error(`${this.name} is already running`)
    // The key may have changed while the node was stopped (sledlog rotate-key, recover --new-key).
    const keys = await loadIdentity(this.dataDir)
    if (keys !== undefined) this.#follow(keys.sled)
    this.#starts++
    const child = spawn(cmd.command, [...cmd.args], {
      cwd: cmd.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    this.#child = child
    this.#stopped = false
    this.#note(`--- ${this.name} start #${this.#starts} pid ${child.pid ?? '?'} port ${this.#port} ---\n`)
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (s: string) => this.#note(s))
    this.#exited = new Promise<ExitInfo>((res) => {
      child.once('exit', (code, signal) => {
        this.#note(`--- ${this.name} exited: ${signal ?? `code ${code}`} ---\n`)
        this.#exits.push({ code, signal, at: Date.now(), expected: this.#expectExit })
        this.#expectExit = false
        if (this.#child === child) {
          this.#child = null
          this.#stopped = false
        }
        res({ code, signal })
      })
    })
    const listening = new Promise<{ sled: string }>((res, rej) => {
      let buf = ''
      child.stdout?.setEncoding('utf8')
      child.stdout?.on('data', (s: string) => {
        buf += s
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          try {
            const msg = JSON.parse(line) as { event?: string; sled?: string }
            if (msg.event === 'listening' && typeof msg.sled === 'string') res({ sled: msg.sled })
            else if (msg.event === 'succession' && typeof msg.sled === 'string') {
              // After a lost disk the node moved itself to a successor key (docs/PROTOCOL.md §8.6).
              this.#note(`[stdout] ${line}\n`)
              this.#follow(msg.sled)
            } else this.#note(`[stdout] ${line}\n`)
          } catch {
            this.#note(`[stdout] ${line}\n`)
          }
        }
      })
      void this.#exited?.then((e) =>
        rej(new Error(`${this.name} exited before listening (${e.signal ?? `code ${e.code}`})`)),
      )
    })
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${this.name} did not listen within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      const { sled } = await Promise.race([listening, timeout])
      if (sled !== this.sled) throw new Error(`${this.name} runs as sled ${sled}, its key file says ${this.sled}`)
      await eventually(() => this.healthy(), timeoutMs, { what: `${this.name} /healthz`, intervalMs: 50 })
    } catch (err) {
      this.#expectExit = true
      child.kill('SIGKILL')
      await this.#exited
      throw new Error(`${(err as Error).message}\n${this.stderrTail()}`, { cause: err })
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * @internal Sends `signal`. For SIGTERM/SIGKILL (and SIGINT) waits for the exit; a SIGTERM
   * that is not obeyed within `graceMs` is followed by SIGKILL.
   */
  async signal(signal: NodeJS.Signals, graceMs = 10_000): Promise<ExitInfo | null> {
    const child = this.#child
    if (child === null) throw new Error(`${this.name} is not running`)
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      child.kill(signal)
      this.#stopped = signal === 'SIGSTOP'
      return null
    }
    const exited = this.#exited as Promise<ExitInfo>
    this.#expectExit = true
    child.kill(signal)
    // A stopped process only acts on SIGTERM once it runs again.
    if (this.#stopped && signal !== 'SIGKILL') child.kill('SIGCONT')
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** The last lines of stderr, labelled, for failure messages. */
  stderrTail(chars = 4000): string {
    const tail = this.#stderr.slice(-chars)
    return `[${this.name} stderr]\n${tail === '' ? '(empty)' : tail}`
  }

  /** @internal Synchronous last-resort kill (process exit handler). */
  killNow(): void {
    this.#expectExit = true
    try {
      this.#child?.kill('SIGKILL')
    } catch {
      // already gone
    }
  }

  #note(s: string): void {
    this.#stderr += s
    if (this.#stderr.length > STDERR_KEEP * 2) this.#stderr = this.#stderr.slice(-STDERR_KEEP)
  }

  async #request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    // GETs are retried on network errors (a keep-alive socket to a node that restarted can
    // fail once); a POST is not: it may have been applied, and a retry would append twice.
    const attempts = method === 'GET' ? 3 : 1
    for (let attempt = 1; ; attempt++) {
      let res: Response
      try {
        res = await fetch(this.url + path, {
          method,
          signal: AbortSignal.timeout(this.#httpTimeoutMs),
          ...(body === undefined
            ? {}
            : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        })
      } catch (err) {
        if (attempt < attempts && !(err instanceof DOMException)) {
          await sleep(50 * attempt)
          continue
        }
        throw new Error(`${this.name}: ${method} ${path} failed: ${(err as Error).message}`, { cause: err })
      }
      const text = await res.text()
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        throw new HttpError(
          res.status,
          undefined,
          `${this.name}: ${method} ${path} → ${res.status}, not JSON: ${text.slice(0, 200)}`,
        )
      }
      if (!res.ok) {
        const e = (json as { error?: { code?: string; message?: string } }).error
        throw new HttpError(
          res.status,
          e?.code,
          `${this.name}: ${method} ${path} → ${res.status} ${e?.code ?? ''}: ${e?.message ?? text.slice(0, 200)}`,
        )
      }
      return json
    }
  }
}

/** How a CLI command run by {@link Cluster.cli} ended. */
export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Options of {@link Cluster.check}. */
export interface CheckOptions {
  /** Nodes to read (default: every running node that is not SIGSTOPped). */
  readonly nodes?: readonly number[]
  /** Expect identical logs and every acknowledged append on every checked node. */
  readonly converged?: boolean
  /** Acknowledged appends to check (default: all of {@link Cluster.acked}). */
  readonly acked?: readonly AckedAppend[]
}

/**
 * A cluster of node processes wired through fault proxies.
 * Lifecycle: `start()` → use → `stop()` (always call it, also after a failure: it kills every
 * child).
 */
export class Cluster {
  /** Every append a node acknowledged (201), in order. */
  readonly acked: AckedAppend[] = []
  readonly #o: ClusterOptions
  readonly #nodes: ClusterNode[] = []
  readonly #edges: Array<[number, number]>
  readonly #proxies = new Map<string, FaultProxy>()
  readonly #settings = new Map<number, NodeSettings>()
  #exitHook: (() => void) | null = null

  constructor(opts: ClusterOptions) {
    if (!(Number.isInteger(opts.size) && opts.size >= 1)) throw new RangeError('size must be >= 1')
    this.#o = opts
    this.#edges = edgesOf(opts.topology ?? 'mesh', opts.size)
  }

  /** Number of nodes. */
  get size(): number {
    return this.#o.size
  }

  /** The dial edges `[from, to]`. */
  get edges(): ReadonlyArray<readonly [number, number]> {
    return this.#edges
  }

  /** Every node. */
  get nodes(): readonly ClusterNode[] {
    return this.#nodes
  }

  /** Exits no one asked for (crashes), per node, in order. */
  unexpectedExits(): Array<ExitRecord & { readonly node: string }> {
    return this.#nodes.flatMap((n) => n.exits.filter((e) => !e.expected).map((e) => ({ ...e, node: n.name })))
  }

  /** Node `i`. */
  node(i: number): ClusterNode {
    const n = this.#nodes[i]
    if (n === undefined) throw new RangeError(`no node ${i} (cluster of ${this.#nodes.length})`)
    return n
  }

  /** The proxy of the link on which node `from` dials node `to`. */
  link(from: number, to: number): FaultProxy {
    const p = this.#proxies.get(`${from}>${to}`)
    if (p === undefined) throw new RangeError(`node ${from} does not dial node ${to} in this topology`)
    return p
  }

  /** Every proxy, keyed `"from>to"`. */
  get proxies(): ReadonlyMap<string, FaultProxy> {
    return this.#proxies
  }

  /** Creates data dirs and keys, allocates ports, starts the proxies, then every node. */
  async start(): Promise<void> {
    this.#exitHook = () => {
      for (const n of this.#nodes) n.killNow()
    }
    process.once('exit', this.#exitHook)
    await mkdir(this.#o.baseDir, { recursive: true })
    for (let i = 0; i < this.#o.size; i++) {
      const node = new ClusterNode(
        this,
        i,
        resolve(this.#o.baseDir, `node-${i}`),
        await this.#unusedPort(),
        this.#o.httpTimeoutMs ?? 10_000,
      )
      await node.prepare(this.#o.keySeed?.(i))
      this.#nodes.push(node)
    }
    for (const [from, to] of this.#edges) {
      const proxy = new FaultProxy({
        targetPort: this.node(to).port,
        label: `${from}→${to}`,
        ...(this.#o.random === undefined ? {} : { random: this.#o.random }),
      })
      await proxy.start()
      this.#proxies.set(`${from}>${to}`, proxy)
    }
    // A proxy listens on a port the OS picks, which may be one a node was given: move the node.
    for (const node of this.#nodes)
      if ([...this.#proxies.values()].some((p) => p.port === node.port)) await this.#move(node.index)
    await Promise.all(this.#nodes.map((n) => this.#launch(n.index)))
  }

  /** Kills every node (SIGTERM, SIGKILL after 3 s) and stops the proxies. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#nodes.filter((n) => n.running).map((n) => n.signal('SIGTERM', 3000).catch(() => n.killNow())),
    )
    await Promise.all([...this.#proxies.values()].map((p) => p.stop()))
    if (this.#exitHook !== null) process.off('exit', this.#exitHook)
    this.#exitHook = null
  }

  /**
   * Sends `signal` to node `i`. SIGTERM and SIGKILL wait for the process to exit; SIGSTOP and
   * SIGCONT freeze and thaw it (its sockets stay open, so peers see a silent node).
   */
  async kill(i: number, signal: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT' = 'SIGTERM'): Promise<ExitInfo | null> {
    return this.node(i).signal(signal)
  }

  /**
   * Restarts node `i` on the same port and data dir: stops it with SIGTERM if it runs, then
   * starts it with its settings, updated by `settings` (kept for later restarts).
   */
  async restart(i: number, settings: NodeSettings = {}): Promise<void> {
    const node = this.node(i)
    if (node.running) await node.signal('SIGTERM')
    this.#settings.set(i, { ...this.#settings.get(i), ...settings })
    await this.#launch(i)
  }

  /**
   * Runs `sledlog <args>` to completion as a child process, launched the way the nodes are
   * (operator commands on a node's data directory: rotate-key, revoke-key, recover). Rejects
   * when it does not finish within `timeoutMs` (it is killed).
   */
  async cli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
    const cmd = (this.#o.command ?? nodeCommand)(args)
    const child = spawn(cmd.command, [...cmd.args], {
      cwd: cmd.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.#o.env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s))
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`sledlog ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr.slice(-2000)}`))
      }, timeoutMs)
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      // 'close' comes after the pipes are drained ('exit' may come before).
      child.once('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  }

  /** Starts node `i` if it is not running (after {@link kill}). */
  async revive(i: number): Promise<void> {
    if (!this.node(i).running) await this.#launch(i)
  }

  /**
   * Disk loss: deletes node `i`'s database but keeps its key file, so it comes back as the same
   * sled with no entries. The node must not be running.
   */
  async wipe(i: number): Promise<void> {
    const node = this.node(i)
    if (node.running) throw new Error(`${node.name} is running; kill it before wiping its disk`)
    await rm(join(node.dataDir, 'db'), { recursive: true, force: true })
    await stat(join(node.dataDir, KEY_FILE)) // the key must survive
  }

  /**
   * Partitions the cluster: every link between a node of `a` and a node of `b` (either way) is
   * cut (connections reset, new ones refused) or, with `blackhole`, silently drops its bytes.
   */
  partition(a: readonly number[], b: readonly number[], mode: 'cut' | 'blackhole' = 'cut'): void {
    for (const x of a) {
      for (const y of b) {
        for (const key of [`${x}>${y}`, `${y}>${x}`]) {
          const p = this.#proxies.get(key)
          if (p === undefined) continue
          if (mode === 'cut') p.cut()
          else p.blackhole()
        }
      }
    }
  }

  /** Removes every fault from every link. */
  heal(): void {
    for (const p of this.#proxies.values()) p.heal()
  }

  /** The logs of the given nodes (default: every running node that is not SIGSTOPped). */
  async logs(nodes?: readonly number[]): Promise<NodeLog[]> {
    const list = this.#pick(nodes)
    return Promise.all(list.map(async (n) => ({ node: n.name, entries: await n.readAll() })))
  }

  /**
   * Reads logs and statuses of the given nodes and returns every invariant violation (see
   * {@link checkInvariants}); with `converged`, also that all of them hold the same log and
   * every acknowledged append.
   */
  async check(opts: CheckOptions = {}): Promise<string[]> {
    const list = this.#pick(opts.nodes)
    // Snapshot the acknowledged appends before reading: an append acknowledged while the logs
    // are being read may legitimately be missing from them.
    const acked = (opts.acked ?? this.acked).slice()
    const [logs, statuses] = await Promise.all([
      this.logs(list.map((n) => n.index)),
      Promise.all(list.map(async (n) => ({ node: n.name, ...(await n.status()) }))),
    ])
    return checkInvariants({ logs, statuses, acked, converged: opts.converged ?? false })
  }

  /** Waits until the given nodes (default: all running, not SIGSTOPped) converge with every invariant holding. */
  async converge(timeoutMs: number, opts: Omit<CheckOptions, 'converged'> = {}): Promise<void> {
    await eventually(() => this.check({ ...opts, converged: true }), timeoutMs, {
      what: 'convergence',
      intervalMs: 200,
    })
  }

  /** State of every node and the stderr tail of each, for failure reports. */
  describe(chars = 3000): string {
    const lines: string[] = []
    for (const n of this.#nodes) {
      lines.push(
        `${n.name}: ${n.running ? (n.paused ? 'stopped (SIGSTOP)' : `running pid ${n.pid ?? '?'}`) : 'down'} ` +
          `port ${n.port} sled ${n.sled.slice(0, 12)}`,
      )
    }
    for (const [k, p] of this.#proxies) {
      const s = p.stats
      lines.push(
        `link ${k}: ${p.isCut ? 'CUT ' : ''}accepted ${s.accepted} refused ${s.refused} active ${s.active} ` +
          `dropped ${s.dropped.forward}/${s.dropped.backward}`,
      )
    }
    for (const n of this.#nodes) lines.push(n.stderrTail(chars))
    return lines.join('\n')
  }

  #pick(nodes: readonly number[] | undefined): ClusterNode[] {
    // By default, only nodes that can answer: a SIGSTOPped node would just time the reads out.
    return nodes === undefined ? this.#nodes.filter((n) => n.running && !n.paused) : nodes.map((i) => this.node(i))
  }

  #cliArgs(i: number): string[] {
    const node = this.node(i)
    const s = { ...this.#o.nodeSettings?.(i), ...this.#settings.get(i) }
    const args = ['node', '--data', node.dataDir, '--host', '127.0.0.1', '--port', String(node.port)]
    for (const [from, to] of this.#edges) if (from === i) args.push('--peer', this.link(from, to).wsUrl)
    const token = s.token === undefined ? this.#o.token : s.token
    if (token !== undefined && token !== null) args.push('--token', token)
    if (this.#o.allowList === true) {
      const linked = new Set<number>()
      for (const [from, to] of this.#edges) {
        if (from === i) linked.add(to)
        if (to === i) linked.add(from)
      }
      for (const j of [...linked].sort((x, y) => x - y)) args.push('--allow', this.node(j).sled)
    }
    const warnAfter = s.recoveryTimeoutMs ?? this.#o.recoveryTimeoutMs
    if (warnAfter !== undefined) args.push('--recovery-timeout', String(warnAfter))
    const quorum = s.recoveryQuorum ?? this.#o.recoveryQuorum
    if (quorum !== undefined) args.push('--recovery-quorum', String(quorum))
    for (const admin of this.#o.adminKeys ?? []) args.push('--admin-key', admin)
    if (this.#o.extraArgs !== undefined) args.push(...this.#o.extraArgs)
    if (s.extraArgs !== undefined) args.push(...s.extraArgs)
    return args
  }

  async #launch(i: number): Promise<void> {
    const node = this.node(i)
    const build = this.#o.command ?? nodeCommand
    for (let attempt = 1; ; attempt++) {
      try {
        await node.start(build(this.#cliArgs(i)), this.#o.env ?? {}, this.#o.startTimeoutMs ?? 30_000)
        return
      } catch (err) {
        // The port was free when allocated, but another process may have taken it since: move
        // the node (and the proxies pointing at it) to a new one.
        if (attempt >= 3 || !/EADDRINUSE/.test(node.stderr.slice(-4000))) throw err
        await this.#move(i)
      }
    }
  }

  /** Gives node `i` a new port and points the proxies to it there. */
  async #move(i: number): Promise<void> {
    const node = this.node(i)
    node.setPort(await this.#unusedPort())
    for (const [from, to] of this.#edges) if (to === i) this.link(from, to).retarget(node.port)
  }

  /**
   * A free port no node of this cluster has: freePort releases its probe at once, so two
   * nodes allocated before either listens can be handed the same port by the OS. The second
   * would fail with EADDRINUSE and move, but a peer dialing it through its proxy in the
   * meantime reaches the first node instead (seen: a node linked to itself and refused it).
   */
  async #unusedPort(): Promise<number> {
    for (;;) {
      const port = await freePort()
      if (!this.#nodes.some((n) => n.port === port) && ![...this.#proxies.values()].some((p) => p.port === port))
        return port
    }
  }
}
