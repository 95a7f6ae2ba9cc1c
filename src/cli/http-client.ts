/**
 * Talks to a running node's HTTP API (docs/API.md) for the commands given `--url`: plain HTTP or
 * HTTPS (with a CA bundle of the operator's for self-signed nodes), with an API token when the
 * node requires one. Every failure becomes a one-line {@link CliError} that says which node and
 * why: the API's stable error code when the node answered, what to do about a missing token or
 * an untrusted certificate, the network error otherwise.
 *
 * Built on node:http/https rather than the global fetch: fetch cannot take a CA per request
 * (that needs an undici Agent, a dependency), and https.Agent({ ca }) is exactly that.
 */
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { redactUrls } from '../config/redact.js'
import { CliError } from './cli-error.js'

/** Requests time out after this long (a stuck node must not hang a script forever). */
const TIMEOUT_MS = 30_000

/**
 * Largest answer read into memory: a full page (10 000 entries of up to 64 KiB each, escaped)
 * fits; a server streaming garbage does not get to exhaust the client's memory.
 */
const MAX_ANSWER_BYTES = 512 * 1024 * 1024

/** Largest error answer read (an error body is a small JSON object). */
const MAX_ERROR_BYTES = 64 * 1024

/** How a {@link NodeClient} connects. */
export interface ClientOptions {
  /** API token, sent as `Authorization: Bearer <token>`. */
  readonly token?: string
  /** PEM CA bundle trusted for an https:// node instead of the system roots. */
  readonly ca?: string
  /** Largest answer body read, in bytes (default 512 MiB). */
  readonly maxAnswerBytes?: number
}

/** An answer whose body is read as it arrives (the SSE stream). */
export interface StreamAnswer {
  readonly status: number
  readonly body: AsyncIterable<Buffer>
  /** The body as an API error (for non-2xx answers). */
  error(): Promise<CliError>
}

/** Where a request goes and how, for messages. */
interface Call {
  readonly method: string
  readonly path: string
}

/** A client of one node. */
export class NodeClient {
  readonly #base: string
  readonly #token: string | undefined
  readonly #agent: http.Agent
  readonly #https: boolean
  readonly #maxAnswerBytes: number

  /** `base` is the node's base URL, e.g. `http://127.0.0.1:7400`, without credentials. */
  constructor(base: string, opts: ClientOptions = {}) {
    this.#base = base.replace(/\/+$/, '')
    this.#https = this.#base.startsWith('https:')
    this.#token = opts.token
    // Keep-alive: `read --all` pages through one connection. Idle sockets are unref'd by the agent.
    this.#agent = this.#https
      ? new https.Agent({ keepAlive: true, ...(opts.ca === undefined ? {} : { ca: opts.ca }) })
      : new http.Agent({ keepAlive: true })
    this.#maxAnswerBytes = opts.maxAnswerBytes ?? MAX_ANSWER_BYTES
  }

  /** The node's base URL (credentials removed). */
  get base(): string {
    return redactUrls(this.#base)
  }

  /** True when requests carry an API token. */
  get hasToken(): boolean {
    return this.#token !== undefined
  }

  /** GET `path` with query `params`; resolves with the JSON body. */
  get(path: string, params?: URLSearchParams): Promise<unknown> {
    const qs = params === undefined || params.size === 0 ? '' : `?${params.toString()}`
    return this.#request({ method: 'GET', path: path + qs })
  }

  /**
   * POST `body` as JSON to `path`; resolves with the JSON body. `timeoutMs`: how long to wait
   * for the answer (default 30 s; longer for a write that waits for its peers' acknowledgements).
   */
  post(path: string, body: unknown, timeoutMs = TIMEOUT_MS): Promise<unknown> {
    return this.#request({ method: 'POST', path }, JSON.stringify(body), timeoutMs)
  }

  /**
   * GET `path` and resolve once the answer's headers arrived, its body to be read as it comes.
   * No timeout: a stream is quiet for as long as the log is; `signal` ends it.
   */
  async stream(path: string, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<StreamAnswer> {
    const call = { method: 'GET', path }
    const res = await this.#send(call, headers, undefined, signal)
    return {
      status: res.statusCode ?? 0,
      body: res,
      error: async () => {
        const text = await readBody(res, MAX_ERROR_BYTES).catch(() => '')
        return apiError(this.base, res.statusCode ?? 0, parseJson(text), { ...call, token: this.hasToken })
      },
    }
  }

  /** Stops keeping idle connections (they would not hold the process open anyway). */
  close(): void {
    this.#agent.destroy()
  }

  async #request(call: Call, body?: string, timeoutMs = TIMEOUT_MS): Promise<unknown> {
    const signal = AbortSignal.timeout(timeoutMs)
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await this.#send(call, headers, body, signal, timeoutMs)
    let text: string
    try {
      text = await readBody(res, this.#maxAnswerBytes)
    } catch (err) {
      if (err instanceof CliError) throw new CliError(`${call.method} ${this.base}${call.path}: ${err.message}`)
      throw unreachable(this.base, err, this.#https, timeoutMs)
    }
    const json = parseJson(text)
    const status = res.statusCode ?? 0
    if (status < 200 || status >= 300) throw apiError(this.base, status, json, { ...call, token: this.hasToken })
    if (json === undefined) {
      throw new CliError(
        `${call.method} ${this.base}${call.path}: HTTP ${status}, not a JSON answer (is this a sledlog node?)`,
      )
    }
    return json
  }

  #send(
    call: Call,
    headers: Readonly<Record<string, string>>,
    body: string | undefined,
    signal: AbortSignal,
    timeoutMs = TIMEOUT_MS,
  ): Promise<IncomingMessage> {
    const url = new URL(this.#base + call.path)
    const all: Record<string, string> = { ...headers }
    if (this.#token !== undefined) all.authorization = `Bearer ${this.#token}`
    const request = this.#https ? https.request : http.request
    return new Promise((resolve, reject) => {
      const req = request(url, { method: call.method, headers: all, agent: this.#agent, signal }, resolve)
      req.on('error', (err) =>
        reject(signal.aborted && !isTimeout(signal) ? err : unreachable(this.base, err, this.#https, timeoutMs)),
      )
      req.end(body)
    })
  }
}

function isTimeout(signal: AbortSignal): boolean {
  return (signal.reason as Error | undefined)?.name === 'TimeoutError'
}

/** Reads a whole body as text, refusing one larger than `max` bytes. */
async function readBody(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const chunk of res as AsyncIterable<Buffer>) {
    n += chunk.length
    if (n > max) {
      res.destroy()
      throw new CliError(`the answer is larger than ${Math.round(max / 1024)} KiB (is this a sledlog node?)`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** A node that could not be reached (network, TLS, timeout): worth retrying, unlike an answer. */
export class NodeUnreachable extends CliError {
  constructor(message: string) {
    super(message)
    this.name = 'NodeUnreachable'
  }
}

/** TLS verification failures, and what the operator should do about each. */
const TLS_ADVICE: ReadonlyArray<[RegExp, string]> = [
  [
    /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER\w*)$/,
    'its TLS certificate is not trusted; if it is self-signed or issued by a private CA, give that CA with --ca FILE',
  ],
  [/^ERR_TLS_CERT_ALTNAME_INVALID$/, 'its TLS certificate is not issued for this host name; use a name it lists'],
  [/^CERT_HAS_EXPIRED$/, 'its TLS certificate has expired'],
  [/^CERT_NOT_YET_VALID$/, 'its TLS certificate is not valid yet (check the clocks)'],
]

/**
 * The error for a node that could not be reached; `https` says which scheme was tried and
 * `timeoutMs` how long the request waited. A {@link NodeUnreachable} unless the node's
 * certificate failed verification.
 */
export function unreachable(
  base: string,
  err: unknown,
  https = base.startsWith('https:'),
  timeoutMs = TIMEOUT_MS,
): CliError {
  const e = err as NodeJS.ErrnoException & { cause?: { code?: string; message?: string; name?: string } }
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError')
    return new NodeUnreachable(`cannot reach the node at ${base}: no answer within ${timeoutMs / 1000} s`)
  const code = e.code ?? e.cause?.code
  // Not a NodeUnreachable: retrying cannot make a certificate trusted.
  for (const [pattern, advice] of TLS_ADVICE)
    if (code !== undefined && pattern.test(code))
      return new CliError(`cannot reach the node at ${base}: ${advice} (${code})`)
  let why = code ?? e.cause?.message ?? e.message
  // OpenSSL's words for "the other side does not speak TLS".
  if (https && /wrong version number|packet length too long|http request/i.test(e.message))
    why = `${why}: the node does not speak TLS here; is it serving plain http://?`
  else if (!https && (code === 'ECONNRESET' || code === 'HPE_INVALID_CONSTANT'))
    why = `${why}: if the node serves HTTPS, use an https:// URL`
  return new NodeUnreachable(`cannot reach the node at ${base}: ${redactUrls(why)}`)
}

/** Which API token scope a request needs (docs/API.md), for the 403 message. */
export function scopeOf(method: string, path: string): string {
  const p = path.split('?')[0] ?? path
  if (p.startsWith('/v1/consumers')) return 'consume'
  if (method !== 'GET' && (p === '/v1/events' || p === '/v1/ingest')) return 'append'
  if (p.startsWith('/v1/tokens') || p === '/v1/revocations' || p.startsWith('/v1/recovery') || p === '/v1/backup')
    return 'admin'
  return 'read'
}

/**
 * The error for a non-2xx answer: the API's `{error: {code, message}}` when it has one; for 401
 * and 403, what to do about the token. `call` names the request (method, path, token sent).
 */
export function apiError(
  base: string,
  status: number,
  body: unknown,
  call?: Call & { readonly token: boolean },
): CliError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error
  const code = typeof e?.code === 'string' ? e.code : undefined
  const said = code === undefined ? `HTTP ${status}` : `${code}: ${String(e?.message)}`
  if (status === 401) {
    const msg =
      call?.token === true
        ? `the node did not accept the API token (${said}): check it is the whole token and not revoked`
        : `the node requires an API token (${said}): give --api-token-file FILE or set SLEDLOG_API_TOKEN`
    return new CliError(`${msg} (node ${base})`, 1, code)
  }
  if (status === 403 && call !== undefined) {
    const scope = scopeOf(call.method, call.path)
    return new CliError(
      `the API token lacks scope "${scope}" needed for ${call.method} ${call.path.split('?')[0]} (${said}); ` +
        `use a token with that scope (node ${base})`,
      1,
      code,
    )
  }
  if (code !== undefined) return new CliError(`${said} (node ${base}, HTTP ${status})`, 1, code)
  return new CliError(`node ${base} answered HTTP ${status}`)
}
