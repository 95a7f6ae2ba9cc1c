/**
 * Talks to a running node's HTTP API (docs/API.md) for the commands given `--url`. Every failure
 * becomes a {@link CliError} that says which node and why: the API's stable error code when the
 * node answered, the network error when it did not.
 */
import { CliError } from './cli-error.js'

/** Requests time out after this long (a stuck node must not hang a script forever). */
const TIMEOUT_MS = 30_000

/** A client of one node. */
export class NodeClient {
  readonly #base: string

  /** `base` is the node's base URL, e.g. `http://127.0.0.1:7400`. */
  constructor(base: string) {
    this.#base = base.replace(/\/+$/, '')
  }

  /** The node's base URL. */
  get base(): string {
    return this.#base
  }

  /** GET `path` with query `params`; resolves with the JSON body. */
  get(path: string, params?: URLSearchParams): Promise<unknown> {
    const qs = params === undefined || params.size === 0 ? '' : `?${params.toString()}`
    return this.#request('GET', path + qs)
  }

  /** POST `body` as JSON to `path`; resolves with the JSON body. */
  post(path: string, body: unknown): Promise<unknown> {
    return this.#request('POST', path, JSON.stringify(body))
  }

  async #request(method: string, path: string, body?: string): Promise<unknown> {
    const url = this.#base + path
    let res: Response
    try {
      res = await fetch(url, {
        method,
        ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
    } catch (err) {
      throw unreachable(this.#base, err)
    }
    const text = await res.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new CliError(`${method} ${url}: HTTP ${res.status}, not a JSON answer (is this a sledlog node?)`)
    }
    if (!res.ok) throw apiError(this.#base, res.status, json)
    return json
  }
}

/** The error for a node that could not be reached. */
export function unreachable(base: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  const why =
    (err as Error).name === 'TimeoutError'
      ? `no answer within ${TIMEOUT_MS / 1000} s`
      : (cause?.code ?? cause?.message ?? (err as Error).message)
  return new CliError(`cannot reach the node at ${base}: ${why}`)
}

/** The error for a non-2xx answer: the API's `{error: {code, message}}` when it has one. */
export function apiError(base: string, status: number, body: unknown): CliError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
  if (typeof e?.code === 'string')
    return new CliError(`${e.code}: ${String(e.message)} (node ${base}, HTTP ${status})`, 1, e.code)
  return new CliError(`node ${base} answered HTTP ${status}`)
}
