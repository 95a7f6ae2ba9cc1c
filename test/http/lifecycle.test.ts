/**
 * The API across its parts' lifecycles, in-process (an API over a real log, a real ingest writer
 * and a local HTTP server), for states a node process cannot be put in on cue: the middle of a
 * shutdown, a failed disk write, a handler bug.
 */
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { createApi, ROUTES, type Api, type ApiLogger } from '../../src/http/api.js'
import { createRouter } from '../../src/http/router.js'
import { IngestWriter } from '../../src/ingest/writer.js'
import { dbPath } from '../../src/log/open-log.js'
import { SledLog } from '../../src/log/sled-log.js'
import { loadOrCreateIdentity } from '../../src/store/identity.js'
import { deriveMacKey } from '../../src/store/level-store.js'
import { serveLocal } from '../helpers/local-http.js'
import { FailingStore, testLog } from '../helpers/logs.js'
import { tempDir } from '../helpers/tmp.js'
import { call, waitFor } from './node-process.js'

interface Served {
  readonly api: Api
  readonly ingest: IngestWriter
  readonly url: string
}

async function serve(log: SledLog, logger?: ApiLogger): Promise<Served> {
  const ingest = new IngestWriter({ log })
  await ingest.start()
  const api = createApi({ log, ingest, peers: () => [], ...(logger === undefined ? {} : { logger }) })
  const url = await serveLocal(api.handle)
  onTestFinished(async () => {
    await ingest.stop()
    await api.close()
  })
  return { api, ingest, url }
}

afterEach(() => {
  vi.restoreAllMocks()
})

const ev = { type: 't', payload: 1 }

describe('the API while the node stops', () => {
  it('refuses every write with 503 NODE_STOPPING once stopping begins, and keeps serving reads', async () => {
    const { log } = await testLog()
    const { api, ingest, url } = await serve(log)
    const first = await call(url, 'POST', '/v1/events', ev)
    expect(first.status).toBe(201)
    expect((await call(url, 'PUT', '/v1/consumers/c')).status).toBe(201)
    expect((await call(url, 'POST', '/v1/consumers/c/ack', { sled: log.sled, seq: 0 })).status).toBe(200)

    // SledNode.stop()'s order: refuse writes, then drain the ingest bus (which closes it).
    api.refuseWrites()
    await ingest.stop()
    const writes: Array<[string, unknown]> = [
      ['/v1/events', ev],
      ['/v1/events', [ev, ev]],
      ['/v1/ingest', [ev]],
      ['/v1/consumers/c/ack', { sled: log.sled, seq: 0 }],
    ]
    for (const [path, body] of writes) {
      const r = await call(url, 'POST', path, body)
      expect({ path, status: r.status, code: r.body.error?.code }).toEqual({ path, status: 503, code: 'NODE_STOPPING' })
    }
    expect(log.length(log.sled)).toBe(1)

    expect((await call(url, 'GET', '/healthz')).status).toBe(200)
    expect((await call(url, 'GET', '/v1/events')).body.entries).toEqual([first.body])
    expect((await call(url, 'GET', '/v1/consumers/c')).body).toMatchObject({ cursor: { [log.sled]: 0 }, pending: 0 })
    expect((await call(url, 'GET', '/v1/status')).status).toBe(200)
  })

  it('answers ingest on a stopped bus with 503 NODE_STOPPING, not 500, even before writes are refused', async () => {
    const { log } = await testLog()
    const { ingest, url } = await serve(log)
    // A node that stops its ingest writer first (the bus closes) without telling the API.
    await ingest.stop()
    const r = await call(url, 'POST', '/v1/ingest', [ev])
    expect(r.status).toBe(503)
    expect(r.body.error.code).toBe('NODE_STOPPING')
  })

  it('closing the API refuses writes too', async () => {
    const { log } = await testLog()
    const { api, url } = await serve(log)
    await api.close()
    const r = await call(url, 'POST', '/v1/events', ev)
    expect([r.status, r.body.error.code]).toEqual([503, 'NODE_STOPPING'])
  })
})

describe('the API after a failed write', () => {
  it('reports unhealthy and answers ingest with STORE_WRITE_FAILED', async () => {
    const dir = await tempDir()
    const keys = await loadOrCreateIdentity(dir)
    const store = new FailingStore({ path: dbPath(dir), macKey: deriveMacKey(keys.seed) })
    const log = new SledLog({ keys, store })
    await log.open()
    onTestFinished(() => log.close())
    const { ingest, url } = await serve(log)
    expect(await call(url, 'GET', '/healthz')).toMatchObject({ status: 200, body: { ok: true } })

    store.failures = 1
    const failed = await call(url, 'POST', '/v1/events', ev)
    expect([failed.status, failed.body.error.code]).toEqual([507, 'STORE_WRITE_FAILED'])
    const health = await call(url, 'GET', '/healthz')
    expect(health.status).toBe(503)
    expect(health.body).toMatchObject({ ok: false, sled: log.sled })
    expect(health.body.writeFailed).toEqual(expect.any(String))

    // The writer stops at its first refused write and closes the bus behind it.
    expect((await call(url, 'POST', '/v1/ingest', [ev])).status).toBe(202)
    await waitFor(() => (ingest.stats().error !== null ? true : undefined), 5000, 'the ingest writer to stop')
    const r = await call(url, 'POST', '/v1/ingest', [ev])
    expect([r.status, r.body.error.code]).toEqual([507, 'STORE_WRITE_FAILED'])
  })
})

describe('unexpected handler failures', () => {
  it('are answered 500 INTERNAL and logged through the API logger, not the console', async () => {
    const { log } = await testLog()
    const logged: Array<{ obj: Readonly<Record<string, unknown>>; msg: string }> = []
    const { api } = await serve(log, { error: (obj, msg) => logged.push({ obj, msg }) })
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    const bug = new Error('handler bug')
    const route = createRouter(api.context, [
      ...ROUTES,
      { path: '/bug', methods: { GET: { handler: () => Promise.reject(bug), scope: null } } },
    ])
    const url = await serveLocal((req, res) => void route(req, res))
    const r = await call(url, 'GET', '/bug')
    expect(r).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } })
    expect(logged).toEqual([
      { obj: { err: bug, method: 'GET', url: '/bug' }, msg: 'internal error answering a request' },
    ])
    expect(consoleError).not.toHaveBeenCalled()
  })

  it('are discarded when no logger is given', async () => {
    const { log } = await testLog()
    const { api } = await serve(log)
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    const route = createRouter(api.context, [
      {
        path: '/bug',
        methods: {
          GET: {
            scope: null,
            handler: () => {
              throw new Error('bug')
            },
          },
        },
      },
    ])
    const url = await serveLocal((req, res) => void route(req, res))
    expect((await call(url, 'GET', '/bug')).status).toBe(500)
    expect(consoleError).not.toHaveBeenCalled()
  })
})
