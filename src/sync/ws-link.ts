/**
 * The transport side of a replication link over a `ws` socket, shared by the inbound server and
 * the dialer (and the harness's and tests' raw clients).
 */
import type { WebSocket } from 'ws'
import type { PeerLink } from './peer-session.js'

/** Normalises ws message data to one Uint8Array. */
export function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

/** A {@link PeerLink} over a `ws` socket (either side). */
export function wsLink(ws: WebSocket): PeerLink {
  return {
    send: (m) => {
      if (ws.readyState === ws.OPEN) ws.send(m)
    },
    close: (code, reason, lingerMs = 1000) => {
      // A paused socket would never read the peer's close frame: resume it first, and terminate
      // if the closing handshake has not finished in time. The close frame is handed to the
      // socket at once, so even a peer given no time to answer receives it.
      ws.resume()
      ws.close(code, reason)
      setTimeout(() => {
        if (ws.readyState !== ws.CLOSED) ws.terminate()
      }, lingerMs).unref()
    },
    bufferedAmount: () => ws.bufferedAmount,
    pause: () => ws.pause(),
    resume: () => ws.resume(),
  }
}

/** ws error codes of a frame over the receiver's limit (it then closes with 1009). */
const TOO_LARGE_CODES = new Set(['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'])

/** True when a ws 'error' event is a message over `maxPayload` (the link closes with 1009). */
export function isTooLarge(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && TOO_LARGE_CODES.has(code)
}
