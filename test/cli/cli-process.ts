/**
 * Runs the sledlog CLI as a child process, as a user would (`node --import tsx src/cli/bin.ts`),
 * or in-process through `main` for fast checks. Processes still running when the test finishes
 * are killed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))

/** The environment without any SLEDLOG_* variable of the developer's shell. */
function cleanEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLEDLOG_')) env[k] = v
  return { ...env, ...extra }
}

/** How a CLI run ended. */
export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Options of {@link runCli}. */
export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>
  /** Written to stdin, which is then closed (closed at once when absent). */
  readonly input?: string
  readonly timeoutMs?: number
  /** Run as this user and group (the test runs as root and needs permissions to bite). */
  readonly user?: { readonly uid: number; readonly gid: number }
}

function spawnCli(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  user?: RunOptions['user'],
): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...user,
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

/** The command line that runs the CLI, for scripts (`node --import tsx src/cli/bin.ts`). */
export const CLI_ARGV: readonly string[] = [process.execPath, '--import', 'tsx', BIN]

/** The repository root (the CLI's working directory). */
export const CLI_CWD = ROOT

/** Runs `sledlog <args>` to completion. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts.env ?? {}, opts.user)
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  child.stdin?.on('error', () => undefined)
  child.stdin?.end(opts.input ?? '')
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`sledlog ${args.join(' ')} did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, opts.timeoutMs ?? 20_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      // 'exit' can come before the pipes are drained; 'close' comes after.
      child.on('close', () => resolve({ code, signal, stdout, stderr }))
    })
  })
}

/** A running `sledlog node`. */
export interface RunningNode {
  readonly url: string
  readonly sled: string
  readonly child: ChildProcess
  /** Everything the node wrote on stderr so far. */
  stderr(): string
  /** Its stderr as parsed JSON log lines (other lines skipped). */
  logs(): Array<Record<string, unknown>>
  /** Resolves once its stderr holds `text` (a log message, say). */
  waitForStderr(text: string): Promise<void>
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts `sledlog node <args>` and waits for its "listening" line. */
export async function startNode(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<RunningNode> {
  const child = spawnCli(['node', ...args], env)
  child.stdin?.end()
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  )
  const stdoutLines: string[] = []
  const listening = await new Promise<{ url: string; sled: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not listen in time\n${stderr}`)), 20_000)
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    rl.on('line', (line) => {
      stdoutLines.push(line)
      const msg = JSON.parse(line) as { event?: string; url?: string; sled?: string }
      if (msg.event === 'listening') {
        clearTimeout(timer)
        resolve({ url: msg.url as string, sled: msg.sled as string })
      }
    })
    void exited.then((e) => {
      clearTimeout(timer)
      reject(new Error(`node exited before listening (${e.signal ?? `code ${e.code}`})\n${stderr}`))
    })
  })
  return {
    ...listening,
    child,
    stderr: () => stderr,
    logs: () =>
      stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    waitForStderr: (text) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!stderr.includes(text)) return
          child.stderr?.off('data', check)
          resolve()
        }
        child.stderr?.on('data', check)
        check()
      }),
    async stop(signal = 'SIGTERM') {
      child.kill(signal)
      const e = await exited
      // Exactly one stdout line, ever: the contract other tools parse.
      if (stdoutLines.length !== 1)
        throw new Error(`node printed ${stdoutLines.length} stdout lines: ${stdoutLines.join('\n')}`)
      return e
    },
  }
}

/**
 * Queues `batches` batches of 2000 ingest events (`{type: 'ingested', payload: i}`) on the node
 * at `url`. The first is retried through the brief window after start in which ingest is not open
 * yet (the node learns its last lid first); the rest are sent at once.
 */
export async function queueIngest(url: string, batches: number): Promise<void> {
  const body = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ type: 'ingested', payload: i })))
  const ingest = (): Promise<Response> =>
    fetch(`${url}/v1/ingest`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  for (let attempt = 0; ; attempt++) {
    const res = await ingest()
    if (res.status === 202) break
    if (attempt > 100) throw new Error(`ingest refused: ${res.status} ${await res.text()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const more = await Promise.all(Array.from({ length: batches - 1 }, ingest))
  const refused = more.filter((r) => r.status !== 202)
  if (refused.length > 0) throw new Error(`ingest refused ${refused.length} batches: ${refused[0]?.status}`)
}

/** Parses NDJSON output. */
export function ndjson(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** Runs `sledlog <args>` in this process through `main`, with captured streams (fast checks). */
export async function runMain(
  args: readonly string[],
  opts: { env?: Readonly<Record<string, string>>; input?: string } = {},
): Promise<CliResult> {
  const { main } = await import('../../src/cli/main.js')
  const capture = () => {
    const s = {
      text: '',
      isTTY: false,
      write: (c: string) => {
        s.text += c
        return true
      },
      once: () => undefined,
    }
    return s
  }
  const stdout = capture()
  const stderr = capture()
  const stdin = Readable.from(opts.input === undefined ? [] : [Buffer.from(opts.input)])
  const code = await main(args, { stdout, stderr, stdin, env: opts.env ?? {} })
  return { code, signal: null, stdout: stdout.text, stderr: stderr.text }
}
