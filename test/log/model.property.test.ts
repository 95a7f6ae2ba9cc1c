import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { openLog } from '../../src/log/open-log.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { syncInto } from '../helpers/logs.js'
import { testSeed } from '../helpers/seed.js'
import { tempDir } from '../helpers/tmp.js'

type Action =
  | { t: 'append'; n: number }
  | { t: 'batch'; n: number }
  | { t: 'gap'; from: number; len: number }
  | { t: 'restart'; snapshotMinBytes: number }
  | { t: 'peer'; peer: number; n: number }
  | { t: 'forged'; peer: number }

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ t: fc.constant('batch' as const), n: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ t: fc.constant('gap' as const), from: fc.nat(1000), len: fc.nat(20) }),
  fc.record({ t: fc.constant('restart' as const), snapshotMinBytes: fc.constantFrom(512, 4096, 1 << 24) }),
  fc.record({
    t: fc.constant('peer' as const),
    peer: fc.integer({ min: 0, max: 1 }),
    n: fc.integer({ min: 1, max: 15 }),
  }),
  fc.record({ t: fc.constant('forged' as const), peer: fc.integer({ min: 0, max: 1 }) }),
)

/** What the model expects per sled: the (kind/type, payload) of each seq, in order. */
type Model = Map<string, string[]>

function describeEntry(e: { kind: string; type?: string; payload?: unknown; from?: number; to?: number }): string {
  return e.kind === 'gap' ? `gap:${e.from}-${e.to}` : `${e.type}:${JSON.stringify(e.payload)}`
}

function check(log: SledLog, model: Model, step: string): void {
  const got = new Map<string, string[]>()
  let page = log.query({ limit: 10_000 })
  for (;;) {
    for (const e of page.entries) {
      const list = got.get(e.sled) ?? []
      expect(e.seq, `${step}: seq contiguous`).toBe(list.length)
      list.push(describeEntry(e))
      got.set(e.sled, list)
    }
    if (page.next === null) break
    page = log.query({ limit: 10_000, after: page.next })
  }
  expect(got, step).toEqual(model)
  const heads: Record<string, number> = {}
  for (const [sled, list] of model) heads[sled] = list.length - 1
  expect(log.heads(), step).toEqual(heads)
}

describe('SledLog against a model', () => {
  it('append / batch / gap / restart / replicate / forged keep the log equal to the model', async () => {
    const seed = testSeed('model')
    let counter = 0
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 20 }), async (actions) => {
        const dir = await tempDir()
        let log = await openLog(dir, { snapshotMinBytes: 4096, snapshotChunkBytes: 1024 })
        const peers = [await openLog(await tempDir()), await openLog(await tempDir())]
        const model: Model = new Map()
        const push = (sled: string, d: string): void => {
          const list = model.get(sled) ?? []
          list.push(d)
          model.set(sled, list)
        }
        try {
          for (const [i, a] of actions.entries()) {
            const step = `step ${i} ${JSON.stringify(a)}`
            switch (a.t) {
              case 'append': {
                const inputs = Array.from({ length: a.n }, () => ({ type: 'a', payload: counter++ }))
                const res = await Promise.all(inputs.map((x) => log.append(x)))
                for (const x of inputs) push(log.sled, describeEntry({ kind: 'event', ...x }))
                expect(res.map((e) => e.seq)).toEqual(res.map((_, k) => (res[0]?.seq ?? 0) + k))
                break
              }
              case 'batch': {
                const inputs = Array.from({ length: a.n }, () => ({ type: 'b', payload: { c: counter++ } }))
                await log.appendBatch(inputs)
                for (const x of inputs) push(log.sled, describeEntry({ kind: 'event', ...x }))
                break
              }
              case 'gap':
                await log.appendGap(a.from, a.from + a.len)
                push(log.sled, `gap:${a.from}-${a.from + a.len}`)
                break
              case 'restart':
                await log.close()
                log = await openLog(dir, { snapshotMinBytes: a.snapshotMinBytes, snapshotChunkBytes: 1024 })
                break
              case 'peer': {
                const peer = peers[a.peer] as SledLog
                const inputs = Array.from({ length: a.n }, () => ({ type: 'p', payload: counter++ }))
                await peer.appendBatch(inputs)
                for (const x of inputs) push(peer.sled, describeEntry({ kind: 'event', ...x }))
                await syncInto(peer, log)
                break
              }
              case 'forged': {
                const peer = peers[a.peer] as SledLog
                await peer.append({ type: 'p', payload: 'forge-me' })
                const [update] = peer.updatesSince(new Map(), 1 << 20)
                const bytes = Buffer.from(update as Uint8Array)
                const at = bytes.lastIndexOf(Buffer.from('forge-me'))
                bytes.write('F', at)
                const r = await log.applyUpdate(bytes)
                expect(r.ok, step).toBe(false)
                // The genuine entry arrives later with the next sync, so model it then.
                push(peer.sled, describeEntry({ kind: 'event', type: 'p', payload: 'forge-me' }))
                await syncInto(peer, log)
                break
              }
            }
            check(log, model, step)
          }
          await log.close()
          log = await openLog(dir)
          check(log, model, 'final reopen')
          expect(log.status().rejected.byCode.UPDATE_MALFORMED ?? 0).toBe(0)
        } finally {
          await log.close()
          await Promise.all(peers.map((p) => p.close()))
        }
      }),
      { seed, numRuns: 60 },
    )
  }, 120_000)
})
