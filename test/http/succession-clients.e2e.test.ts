/**
 * Clients of a node that lost its disk and moves to a successor key (real `sledlog node`
 * processes): a write retried with its idempotency id after the move must find the entry the
 * old key signed (recovered from a peer) rather than append the event a second time; streams
 * and durable consumers opened while it recovers go on, through the move, without a gap or a
 * duplicate.
 */
import { describe, expect, it } from 'vitest'
import type { ClusterNode } from '../../src/harness/cluster.js'
import { eventually, movedOn, testCluster } from '../helpers/cluster.js'
import { SseClient, type SseEvent } from './sse-client.js'

const CONVERGE_MS = 30_000

/** Waits until `node` has a ready link to a configured peer (acks=1 can be asked). */
async function linked(node: ClusterNode): Promise<void> {
  await eventually(async () => (await node.status()).acks.connectedPeers >= 1, CONVERGE_MS, {
    what: `${node.name} to link to its peer`,
  })
}

describe('idempotent writes across a move to a successor key', () => {
  it('a retry after the disk loss is answered with the old key entry, not appended again', async () => {
    const c = await testCluster({ size: 2, topology: 'mesh' })
    const a = c.node(0)
    const old = a.sled
    await linked(a)
    const first = await a.append(
      [
        { type: 'order', payload: { n: 1 }, id: 'order-1' },
        { type: 'order', payload: { n: 2 }, id: 'order-2' },
      ],
      { acks: 1 },
    )
    expect(first.map((e) => [e.sled, e.seq])).toEqual([
      [old, 0],
      [old, 1],
    ])
    // The client never saw that answer (say): the node dies with its disk, comes back, moves on.
    await c.kill(0, 'SIGKILL')
    await c.wipe(0)
    await c.revive(0)
    await movedOn(a, old)
    await linked(a)
    // Its retry, and a batch mixing a retried id with a new event.
    const retry = await a.append({ type: 'order', payload: { n: 1 }, id: 'order-1' }, { acks: 1 })
    expect(retry.map((e) => [e.sled, e.seq, e.sig])).toEqual([[old, 0, first[0]?.sig]])
    const mixed = await a.append([
      { type: 'order', payload: { n: 2 }, id: 'order-2' },
      { type: 'order', payload: { n: 3 }, id: 'order-3' },
    ])
    expect(mixed.map((e) => [e.sled, e.seq])).toEqual([
      [old, 1],
      [a.sled, 1],
    ])
    // The same id for another event is a conflict, as it was under the old key.
    const conflict = await a.append({ type: 'order', payload: { n: 9 }, id: 'order-1' }).catch((e: unknown) => e)
    expect(conflict).toMatchObject({ status: 409, code: 'ENTRY_ID_CONFLICT' })
    await c.converge(CONVERGE_MS)
    for (const log of await c.logs()) {
      const ids = log.entries.flatMap((e) => {
        const id = (e as { id?: string }).id
        return id === undefined ? [] : [id]
      })
      expect(ids.sort()).toEqual(['order-1', 'order-2', 'order-3'])
    }
  })
})

/** Entries (`sled:seq`) among `events`. */
const keysOf = (events: readonly SseEvent[]): string[] =>
  events.flatMap((e) => {
    if (e.event !== 'entry') return []
    const v = JSON.parse(e.data) as { sled: string; seq: number }
    return [`${v.sled}:${v.seq}`]
  })

describe('streams and consumers across the move', () => {
  it('a stream resumes after it by Last-Event-ID, a consumer made while recovering keeps its cursor', async () => {
    const c = await testCluster({ size: 2, topology: 'mesh' })
    const a = c.node(0)
    const old = a.sled
    await a.append(Array.from({ length: 20 }, (_, k) => ({ type: 'before', payload: k })))
    await eventually(async () => ((await c.node(1).status()).heads[old] ?? -1) === 19, CONVERGE_MS, {
      what: 'node 1 to hold the 20',
    })
    await c.kill(1, 'SIGKILL')
    await c.kill(0, 'SIGKILL')
    await c.wipe(0)
    await c.revive(0)
    // Recovering (its peer is down): reads, streams and consumers work; writes are refused.
    const put = await fetch(`${a.url}/v1/consumers/billing`, { method: 'PUT' })
    expect(put.status).toBe(201)
    const stream = await SseClient.open(`${a.url}/v1/stream?from=start`)
    expect(stream.status).toBe(200)
    await stream.until((e) => e.event === 'live')
    await c.revive(1)
    // The 20 arrive from the peer on the stream; then the move ends it (its log closes).
    const seen: SseEvent[] = []
    await stream
      .until((e, all) => {
        seen.push(e)
        return keysOf(all).length >= 20
      }, CONVERGE_MS)
      .catch(() => undefined)
    await stream.waitEnd(CONVERGE_MS).catch(() => undefined)
    await movedOn(a, old)
    // The client resumes where it was: the rest (the successor's entry 0), nothing twice.
    const again = await SseClient.open(`${a.url}/v1/stream`, { 'last-event-id': stream.lastEventId })
    expect(again.status).toBe(200)
    const rest = await again.until((e) => e.event === 'live', CONVERGE_MS)
    again.close()
    const all = [...keysOf(seen), ...keysOf(rest)]
    expect(new Set(all).size).toBe(all.length)
    expect(all.filter((k) => k.startsWith(old))).toHaveLength(20)
    expect(all).toContain(`${a.sled}:0`)
    // The consumer made while recovering is still there, under the successor, and acks work.
    const ack = await fetch(`${a.url}/v1/consumers/billing/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sled: old, seq: 0 }),
    })
    expect(ack.status).toBe(200)
    expect(await ack.json()).toMatchObject({ name: 'billing', cursor: { [old]: 0 } })
  })
})
