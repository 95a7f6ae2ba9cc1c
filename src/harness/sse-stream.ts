/**
 * A minimal Server-Sent Events connection for the harness's stream clients, on `node:http` so
 * the reader controls the pace: pausing the response stops reading the socket, the node's
 * send buffer fills, and its subscription queue overflows (which is how a real slow consumer
 * gets `lagged`). `fetch` would buffer on its own and hide that.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { SseParser, type SseEvent } from '../cli/sse-parser.js'

export type { SseEvent }

/** An open event stream. */
export interface SseStream {
  /** Stops reading (the node sees backpressure). */
  pause(): void
  /** Reads again. */
  resume(): void
  /** Ends the stream from this side. */
  close(): void
  /** Resolves when the stream ended, with why (`end`, an error message, `closed`). */
  readonly ended: Promise<string>
}

/** A refused stream request: the node answered with a non-200 status. */
export class StreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`stream refused: ${status} ${body.slice(0, 300)}`)
    this.name = 'StreamRefused'
  }
}

/**
 * Opens `url` as an event stream and calls `onEvent` for every event, synchronously as the
 * bytes are parsed. Resolves once the node answered 200; rejects when it cannot be reached or
 * refuses (with {@link StreamRefused}).
 */
export function openSse(
  url: string,
  headers: Readonly<Record<string, string>>,
  onEvent: (ev: SseEvent) => void,
): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest
    try {
      req = request(url, { method: 'GET', headers: { accept: 'text/event-stream', ...headers }, agent: false })
    } catch (err) {
      reject(err as Error)
      return
    }
    let settled = false
    req.once('error', (err) => {
      if (!settled) {
        settled = true
        reject(err)
      }
    })
    req.once('response', (res: IncomingMessage) => {
      settled = true
      res.setEncoding('utf8')
      if (res.statusCode !== 200) {
        let body = ''
        res.on('data', (s: string) => (body += s))
        res.once('end', () => reject(new StreamRefused(res.statusCode ?? 0, body)))
        res.once('error', () => reject(new StreamRefused(res.statusCode ?? 0, body)))
        return
      }
      const parser = new SseParser()
      let closedHere = false
      const ended = new Promise<string>((done) => {
        res.on('data', (s: string) => {
          for (const ev of parser.feed(s)) onEvent(ev)
        })
        res.once('end', () => done(closedHere ? 'closed' : 'end'))
        res.once('error', (err) => done(closedHere ? 'closed' : err.message))
        res.once('close', () => done(closedHere ? 'closed' : 'connection closed'))
      })
      resolve({
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => {
          closedHere = true
          req.destroy()
          res.destroy()
        },
        ended,
      })
    })
    req.end()
  })
}
