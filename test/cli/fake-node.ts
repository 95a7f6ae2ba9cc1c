/**
 * Stand-ins for a node's HTTP API, plain or HTTPS (test/fixtures/tls), for client tests that
 * need what a real node cannot be made to do on demand: misbehave, require a token before the
 * API does, or answer with hostile text. Each records the requests it got and closes when the
 * test finishes.
 */
import { readFileSync } from 'node:fs'
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { onTestFinished } from 'vitest'
import { tlsFile } from '../helpers/tls.js'

/** A request as the fake saw it. */
export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

/** Options of {@link fakeNode}. */
export interface FakeNodeOptions {
  /** Serve HTTPS with the CA-signed node certificate, or the self-signed stranger. */
  readonly tls?: 'node' | 'stranger'
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string
}

/** A running fake. */
export interface FakeNode {
  readonly url: string
  readonly requests: SeenRequest[]
}

/** Starts a server answering with `handler`; port 0, closed when the test finishes. */
export async function fakeNode(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
  opts: FakeNodeOptions = {},
): Promise<FakeNode> {
  const requests: SeenRequest[] = []
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    handler(req, res, requests.length - 1)
  }
  const server =
    opts.tls === undefined
      ? createHttpServer(listener)
      : createHttpsServer(
          {
            cert: readFileSync(tlsFile(opts.tls === 'node' ? 'node.pem' : 'stranger.pem')),
            key: readFileSync(tlsFile(opts.tls === 'node' ? 'node.key' : 'stranger.key')),
          },
          listener,
        )
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const scheme = opts.tls === undefined ? 'http' : 'https'
  return { url: `${scheme}://${host}:${(server.address() as AddressInfo).port}`, requests }
}

/** Answers `status` with `body` as JSON. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

/** Starts an event stream answer (if not started) and writes `text` to it. */
export function sse(res: ServerResponse, text: string): void {
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream' })
  res.write(text)
}

/** A stored entry as the API serves it. */
export function entryJson(seq: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { sled: 'a'.repeat(64), seq, ts: 1, kind: 'event', type: 't', payload: seq, sig: 's', ...fields }
}
