/**
 * An in-process HTTP server for tests: on 127.0.0.1 at a port the kernel picks (port 0, so tests
 * running at the same time never collide), closed when the calling test finishes.
 */
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { onTestFinished } from 'vitest'

/**
 * Serves `handle` and returns the server's base URL. When the test finishes, `beforeClose` runs
 * first (e.g. an API ending its streams), then every connection is cut and the server closed:
 * a stream left open would otherwise hold `close` forever.
 */
export async function serveLocal(handle: RequestListener, beforeClose?: () => Promise<void>): Promise<string> {
  const http = createServer(handle)
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  onTestFinished(async () => {
    await beforeClose?.()
    http.closeAllConnections()
    await new Promise((r) => http.close(r))
  })
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`
}
