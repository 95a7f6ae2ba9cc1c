/**
 * The node's HTTP(S) server around the API: plain HTTP or TLS, limits against slow and
 * misbehaving clients (slowloris: headers and whole requests must arrive in time), and a JSON
 * answer on every refusal the HTTP parser itself makes (431, 408, 400), so no error path
 * answers in another format or leaves a socket without an error handler.
 */
import { readFile } from 'node:fs/promises'
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttps } from 'node:https'
import type { Duplex } from 'node:stream'
import { type ErrorCode, sledlogError } from '../errors.js'
import { HTTP_STATUS } from './status-codes.js'

/** Server limits (docs/API.md "Limits"). */
export interface ServerLimits {
  /** Time for a client to send the request line and headers, ms. */
  readonly headersTimeoutMs: number
  /** Time for a client to send the whole request (headers and body), ms. */
  readonly requestTimeoutMs: number
  /** Idle time of a keep-alive connection between requests, ms. */
  readonly keepAliveTimeoutMs: number
  /** Largest request line plus headers, bytes. */
  readonly maxHeaderBytes: number
}

/** Default {@link ServerLimits}. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
}

/** PEM files of the server's certificate chain and key. */
export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
}

/** A certificate chain and key, PEM. */
export interface TlsMaterial {
  readonly cert: Buffer
  readonly key: Buffer
}

/** Reads the certificate and key; a missing or unreadable file is CONFIG_INVALID naming it. */
export async function readTls(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (path: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(path)
    } catch (err) {
      throw sledlogError('CONFIG_INVALID', `cannot read the TLS ${what} ${path}: ${(err as Error).message}`, { path })
    }
  }
  return { cert: await read(files.certFile, 'certificate'), key: await read(files.keyFile, 'key') }
}

/** The error code of a refusal by the HTTP parser or the server's timers. */
function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'HTTP_HEADERS_TOO_LARGE'
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'HTTP_REQUEST_TIMEOUT'
  return 'HTTP_BAD_REQUEST'
}

const CLIENT_ERROR_MESSAGES: Partial<Record<ErrorCode, string>> = {
  HTTP_HEADERS_TOO_LARGE: 'request line and headers exceed the size limit',
  HTTP_REQUEST_TIMEOUT: 'the request did not arrive in time',
  HTTP_BAD_REQUEST: 'the request is not valid HTTP/1.1',
}

/**
 * Answers a request the parser refused with the one JSON error format and closes the
 * connection. A socket that is already gone (reset) or mid-answer is only destroyed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
  if (err.code === 'ECONNRESET' || !socket.writable || busy) {
    socket.destroy()
    return
  }
  const code = clientErrorCode(err)
  const status = HTTP_STATUS[code]
  const body = JSON.stringify({ error: { code, message: CLIENT_ERROR_MESSAGES[code] ?? code } })
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status] ?? ''
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
  // end() waits for the client to read; one that never does must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref()
}

/**
 * Creates the server (HTTPS when `tls` is given) with `handle` as its request listener. The
 * websocket upgrade path is left to whoever attaches to `upgrade` (the sync server).
 */
export function createApiServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  opts: { readonly tls?: TlsMaterial; readonly limits?: Partial<ServerLimits> } = {},
): Server {
  const l = { ...DEFAULT_SERVER_LIMITS, ...opts.limits }
  const base = {
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // How often the timeouts above are checked (Node's default, 30 s, would let a slowloris
    // connection live up to 30 s past its deadline).
    connectionsCheckingInterval: Math.min(1000, l.headersTimeoutMs),
  }
  const server: Server =
    opts.tls === undefined ? createHttp(base, handle) : createHttps({ ...base, ...opts.tls }, handle)
  server.on('clientError', answerClientError)
  // A failed TLS handshake (a plain-HTTP client, a scanner) just closes; never an unhandled error.
  server.on('tlsClientError', (_err: Error, socket: Duplex) => socket.destroy())
  return server
}
