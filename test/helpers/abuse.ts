/**
 * Misbehaving HTTP clients on raw TCP sockets, for abuse tests of any HTTP server: one that
 * sends a request and never reads the answer, one that sends its headers a byte at a time
 * (slowloris), one that resets the connection right after its request. Every socket is
 * destroyed when the test finishes.
 */
import { connect, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'

/** Host and port of a base URL. */
function target(base: string): { host: string; port: number } {
  const u = new URL(base)
  return { host: u.hostname, port: Number(u.port) }
}

/** Opens a TCP connection to a base URL's host and port; destroyed when the test finishes. */
export function openSocket(base: string): Promise<Socket> {
  const { host, port } = target(base)
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => resolve(socket))
    socket.on('error', reject)
    onTestFinished(() => {
      socket.destroy()
    })
  })
}

/** A plain GET request (HTTP/1.1, keep-alive) as raw text. */
export function rawGet(base: string, path: string, headers: Readonly<Record<string, string>> = {}): string {
  const { host, port } = target(base)
  const lines = Object.entries({ host: `${host}:${port}`, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`)
  return `GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`
}

/** Collects what a socket receives (UTF-8); `closed` resolves when it closes. */
function collect(socket: Socket): { received: () => string; closed: Promise<void> } {
  let got = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => {
    got += d
  })
  socket.on('error', () => undefined)
  return { received: () => got, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) }
}

/**
 * Sends `request` and then never reads: the socket is paused, so the kernel's buffers fill and
 * the server's writes back up. Resolves once the request is written; errors are ignored (the
 * server may cut the client off).
 */
export async function neverReads(base: string, request: string): Promise<Socket> {
  const socket = await openSocket(base)
  socket.pause()
  socket.on('error', () => undefined)
  socket.write(request)
  return socket
}

/**
 * A slowloris connection: sends `request` one byte every `intervalMs`, never finishing in time.
 * Collects what the server answers; `closed` resolves when the server closes the connection.
 */
export async function slowSender(
  base: string,
  request: string,
  intervalMs: number,
): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = await openSocket(base)
  const { received, closed } = collect(socket)
  let i = 0
  const timer = setInterval(() => {
    if (i >= request.length || socket.destroyed) {
      clearInterval(timer)
      return
    }
    socket.write(request[i++] as string)
  }, intervalMs)
  onTestFinished(() => clearInterval(timer))
  void closed.then(() => clearInterval(timer))
  return { socket, received, closed }
}

/**
 * Sends `request` and resets the connection (TCP RST) after `afterMs`, without reading: the
 * client that vanishes while the server is answering.
 */
export async function sendAndReset(base: string, request: string | Buffer, afterMs = 0): Promise<void> {
  const socket = await openSocket(base)
  socket.on('error', () => undefined)
  socket.write(request)
  await new Promise((r) => setTimeout(r, afterMs))
  socket.resetAndDestroy()
}

/** Sends `request` and collects the whole answer until the server closes (or `timeoutMs`). */
export async function rawExchange(base: string, request: string, timeoutMs = 5000): Promise<string> {
  const socket = await openSocket(base)
  const { received, closed } = collect(socket)
  socket.write(request)
  const t = setTimeout(() => socket.destroy(), timeoutMs)
  await closed
  clearTimeout(t)
  return received()
}
