import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { SledLog } from '../../src/log/sled-log.js'
import { Replicator } from '../../src/sync/replicator.js'
import type { AuthConfig } from '../../src/sync/handshake.js'
import { loadIdentity } from '../../src/store/identity.js'
import { testLog } from '../helpers/logs.js'

interface InProc {
  log: SledLog
  url: string
  rep: Replicator
}

async function node(peers: string[], auth: AuthConfig = {}, port = 0): Promise<InProc & { http: Server }> {
  const { log, dir } = await testLog()
  const keys = (await loadIdentity(dir))!
  const http = createServer((_req, res) => res.end())
  await new Promise<void>((r) => http.listen(port, '127.0.0.1', r))
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`
  const rep = new Replicator({ log, keys, peers, auth, maxBackoffMs: 500, recoveryTimeoutMs: 2000 })
  rep.start(http)
  onTestFinished(async () => {
    await rep.stop()
    await new Promise((r) => http.close(r))
  })
  return { log, url, rep, http }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('Replicator (in process, real websockets)', () => {
  it('two nodes converge both ways', async () => {
    const a = await node([])
    const b = await node([a.url])
    await a.log.appendBatch([{ type: 'a', payload: 1 }, { type: 'a', payload: 2 }])
    await b.log.append({ type: 'b', payload: 3 })
    await until(() => a.log.query().entries.length === 3 && b.log.query().entries.length === 3)
    expect(a.log.query().entries).toEqual(b.log.query().entries)
    await a.log.append({ type: 'a', payload: 4 })
    await until(() => b.log.query().entries.length === 4)
    const st = b.rep.status()
    expect(st[0]).toMatchObject({ connected: true, sled: a.log.sled, synced: true })
  })
})
