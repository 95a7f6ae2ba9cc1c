/**
 * A real node process for end-to-end API tests: `src/cli/bin.ts node` under tsx, killed when the
 * test finishes (pass or fail), its stderr shown when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { onTestFailed, onTestFinished } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))
const CONFIG_MAIN = fileURLToPath(new URL('./node-main.ts', import.meta.url))

/** A running node. */
export interface NodeProcess {
  readonly url: string
  readonly sled: string
  readonly dir: string
  readonly child: ChildProcess
  /** Stops it with SIGTERM (a clean shutdown) and waits for it to exit. */
  stop(): Promise<void>
  /** stderr so far. */
  stderr(): string
}

/** Starts a node on `dir` (port 0) with extra CLI arguments; resolves once it listens. */
export function startNode(dir: string, extra: readonly string[] = []): Promise<NodeProcess> {
  return launch(dir, [BIN, 'node', '--data', dir, '--host', '127.0.0.1', '--port', '0', ...extra])
}

/**
 * Starts a node process from a NodeConfig (test/http/node-main.ts) for settings the CLI does not
 * take; `dataDir`, `host` (127.0.0.1), `port` (0) and `peers` ([]) are filled in.
 */
export function startNodeWithConfig(dir: string, config: Readonly<Record<string, unknown>> = {}): Promise<NodeProcess> {
  const full = { dataDir: dir, host: '127.0.0.1', port: 0, peers: [], ...config }
  return launch(dir, [CONFIG_MAIN, JSON.stringify(full)])
}

/** How a node process that was expected to fail ended. */
export interface FailedStart {
  readonly code: number | null
  readonly stderr: string
}

/** Runs a node that must refuse to start (CLI arguments); resolves with its exit code and stderr. */
export async function failedStart(dir: string, extra: readonly string[], timeoutMs = 20_000): Promise<FailedStart> {
  const child = spawnNode([BIN, 'node', '--data', dir, '--port', '0', ...extra])
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  let stdout = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  if (stdout.includes('"listening"')) throw new Error(`node started although it should have refused:\n${stderr}`)
  return { code, stderr }
}

function spawnNode(args: readonly string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  })
  return child
}

async function launch(dir: string, args: readonly string[]): Promise<NodeProcess> {
  const child = spawnNode(args)
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-20_000)
  })
  const exited = once(child, 'exit')
  onTestFailed(() => {
    console.error(`node ${dir} stderr:\n${stderr}`)
  })
  const listening = await new Promise<{ url: string; sled: string }>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`node did not start within 20 s:\n${stderr}`)), 20_000)
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      for (const line of out.split('\n').slice(0, -1)) {
        try {
          const msg = JSON.parse(line) as { event?: string; url?: string; sled?: string }
          if (msg.event === 'listening' && typeof msg.url === 'string' && typeof msg.sled === 'string') {
            clearTimeout(timer)
            resolve({ url: msg.url, sled: msg.sled })
          }
        } catch {
          // not a JSON line: ignore
        }
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`node exited (${code ?? signal}) before listening:\n${stderr}`))
    })
  })
  return {
    ...listening,
    dir,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await exited
    },
    stderr: () => stderr,
  }
}

/** A JSON API answer. */
// biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely typed
export interface Answer<T = any> {
  readonly status: number
  readonly headers: Headers
  readonly body: T
}

/** Sends a request and parses the JSON answer. `body` is sent as JSON unless it is a string or Buffer. */
// biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely typed
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' || Buffer.isBuffer(body) ? (body as string) : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
  }
  let res: Response
  try {
    res = await fetch(base + path, init)
  } catch (err) {
    // A kept-alive socket the node closes (its 5 s idle timeout) just as a request goes out on it
    // resets: a race of every HTTP client, which browsers answer by retrying idempotent requests
    // once on a new connection. A node busy for seconds (an abuse test) makes the race likely.
    const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
    if (method !== 'GET' || (code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET')) throw err
    res = await fetch(base + path, init)
  }
  const text = await res.text()
  let parsed: unknown = text
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) parsed = JSON.parse(text)
  return { status: res.status, headers: res.headers, body: parsed as T }
}

/** Polls `check` until it returns a value other than undefined or false, or fails after `ms`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await check()
    // `false` is "not yet" too: `waitFor(() => x === 1)` must wait, not return at once.
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
