/**
 * Replicated acknowledgements against real node processes (`sledlog node`, real LevelDB, real
 * websockets): POST /v1/events?acks=N answers once N configured peers hold the write; with a
 * peer down it is refused before signing; with a peer that stops reading (SIGSTOP) it ends in
 * 504 ACKS_TIMEOUT saying what is known, and the retry with the same idempotency id signs
 * nothing again once the peer is back; and a node whose disk was lost after acks=1 writes gets
 * every one of them back.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../cli/cli-process.js'
import { tempDir } from '../helpers/tmp.js'
import { parseExposition, sampleValue } from './exposition-parser.js'
import { call, startNode, waitFor, type NodeProcess } from './node-process.js'

/** The `acks` section of a node's status. */
// biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely typed
async function acksOf(node: NodeProcess): Promise<any> {
  return (await call(node.url, 'GET', '/v1/status')).body.acks
}

/** Waits until `node` has `n` configured peers linked. */
function linked(node: NodeProcess, n: number): Promise<unknown> {
  return waitFor(async () => (await acksOf(node)).connectedPeers === n, 20_000, `${n} peers linked`)
}

/** Every entry of `sled` that `node` serves. */
// biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely typed
async function entriesOf(node: NodeProcess, sled: string): Promise<any[]> {
  const out = []
  let after: string | null = null
  for (;;) {
    const q: string = `/v1/events?sled=${sled}&limit=10000${after === null ? '' : `&after=${after}`}`
    const page = (await call(node.url, 'GET', q)).body
    out.push(...page.entries)
    if (page.next === null) return out
    after = page.next
  }
}

const post = (node: NodeProcess, query: string, body: unknown) => call(node.url, 'POST', `/v1/events${query}`, body)

describe('acks=N with node processes', () => {
  it('acks=1 and acks=2 hold on every peer when answered; a peer down refuses before signing', async () => {
    const b = await startNode(await tempDir())
    const c = await startNode(await tempDir())
    const a = await startNode(await tempDir(), [
      '--peer',
      b.url.replace('http', 'ws'),
      '--peer',
      c.url.replace('http', 'ws'),
    ])
    await linked(a, 2)

    const one = await post(a, '?acks=1', { type: 'order', payload: 1, id: 'o-1' })
    expect(one.status).toBe(201)
    expect(one.body).toMatchObject({ sled: a.sled, seq: 0, acks: expect.any(Number) })
    expect(one.body.acks).toBeGreaterThanOrEqual(1)

    const two = await post(a, '?acks=2', [
      { type: 'order', payload: 2 },
      { type: 'order', payload: 3 },
    ])
    expect(two).toMatchObject({ status: 201, body: { acks: 2 } })
    expect(two.body.entries.map((e: { seq: number }) => e.seq)).toEqual([1, 2])
    // Both peers serve the batch the moment the write is answered: no waiting here.
    for (const peer of [b, c])
      expect((await entriesOf(peer, a.sled)).map((e) => e.sig)).toContain(two.body.entries[1].sig)

    // A local ack answers as before (no acks field); bad values are a clear 400.
    const local = await post(a, '', { type: 'order', payload: 4 })
    expect(local.status).toBe(201)
    expect(local.body.acks).toBeUndefined()
    for (const q of ['?acks=3', '?acks=-1', '?acks=two', '?acks=1&acks=1', '?ackTimeoutMs=0', '?ack=1']) {
      const r = await post(a, q, { type: 'order', payload: 5 })
      expect(r.status, q).toBe(400)
      expect(r.body.error.code, q).toBe('HTTP_BAD_REQUEST')
    }
    expect((await post(a, '?acks=3', { type: 'x', payload: 0 })).body.error.message).toMatch(
      /acks must be an integer in 0\.\.2: this node has 2 configured peers/,
    )

    // The CLI asks the same.
    const cli = await runCli(['append', '--url', a.url, '--acks', '2', '--type', 'cli', '--payload', '6'])
    expect(cli.code, cli.stderr).toBe(0)
    expect(JSON.parse(cli.stdout)).toMatchObject({ sled: a.sled, seq: 4, acks: 2 })
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ type: 'bulk', payload: i, id: `b-${i}` }))
    const bulk = await runCli(['append', '--url', a.url, '--acks', '1', '--batch', '10'], { input: lines.join('\n') })
    expect(bulk.code, bulk.stderr).toBe(0)
    expect(JSON.parse(bulk.stdout)).toMatchObject({ events: 30, lastSeq: 34, acks: expect.any(Number) })

    // acks=1 batches may be answered before the second peer holds them: it catches up.
    const both = async () => (await acksOf(a)).peers.every((p: { holdsOurs: number }) => p.holdsOurs === 35)
    await waitFor(both, 20_000, 'both peers to hold all 35')
    const status = await acksOf(a)
    expect(status).toMatchObject({ minAcks: 0, ackTimeoutMs: 10_000, configuredPeers: 2, connectedPeers: 2 })
    expect(status).toMatchObject({ acked: 6, timeouts: 0, refused: 0, waiting: 0 })
    expect(status.peers.map((p: { sled: string }) => p.sled)).toEqual([b.sled, c.sled].sort())
    for (const p of status.peers) expect(p).toMatchObject({ connected: true, holdsOurs: 35 })
    const fams = parseExposition(await (await fetch(`${a.url}/metrics`)).text())
    expect(sampleValue(fams, 'sledlog_ack_wait_seconds_count')).toBe(6)
    expect(sampleValue(fams, 'sledlog_ack_wait_seconds_bucket', { le: '+Inf' })).toBe(6)
    expect(sampleValue(fams, 'sledlog_ack_peer_holds_entries', { remote_sled: b.sled })).toBe(35)

    // c goes away: acks=2 is refused before anything is signed.
    await c.stop()
    await linked(a, 1)
    const headsBefore = (await call(a.url, 'GET', '/v1/status')).body.heads
    const refused = await post(a, '?acks=2', { type: 'order', payload: 7, id: 'o-7' })
    expect(refused.status).toBe(503)
    expect(refused.body.error).toMatchObject({
      code: 'NOT_ENOUGH_PEERS',
      details: { required: 2, connected: 1, configured: 2, peers: [b.sled] },
    })
    expect((await call(a.url, 'GET', '/v1/status')).body.heads).toEqual(headsBefore)
    expect((await call(a.url, 'GET', '/v1/status')).body.acks.refused).toBe(1)
    expect(
      sampleValue(parseExposition(await (await fetch(`${a.url}/metrics`)).text()), 'sledlog_acks_refused_total'),
    ).toBe(1)
  })

  it('a peer that stops reading: 504 ACKS_TIMEOUT, stored here; the retry signs nothing again', async () => {
    const b = await startNode(await tempDir())
    const a = await startNode(await tempDir(), ['--peer', b.url.replace('http', 'ws'), '--ack-timeout', '1500'])
    await linked(a, 1)
    expect((await post(a, '?acks=1', { type: 'warm', payload: 0 })).status).toBe(201)

    const event = { type: 'payment', payload: { amount: 42 }, id: 'pay-42' }
    b.child.kill('SIGSTOP')
    let timedOut: Awaited<ReturnType<typeof post>>
    try {
      timedOut = await post(a, '?acks=1', event)
    } finally {
      b.child.kill('SIGCONT')
    }
    expect(timedOut.status).toBe(504)
    expect(timedOut.body.error).toMatchObject({
      code: 'ACKS_TIMEOUT',
      details: { stored: true, seqs: [1], acks: 0, required: 1, heldBy: [], idempotent: true, timeoutMs: 1500 },
    })
    expect(timedOut.body.error.message).toMatch(/1 entry is stored on this node \(seq 1\).*retrying .* is safe/)
    const stored = (await entriesOf(a, a.sled)).find((e) => e.id === 'pay-42')
    expect(stored).toMatchObject({ seq: 1, type: 'payment' })
    expect(
      sampleValue(parseExposition(await (await fetch(`${a.url}/metrics`)).text()), 'sledlog_ack_timeouts_total'),
    ).toBe(1)

    // b resumes, takes the entry and proves it; the retry waits on that and signs nothing new.
    await waitFor(async () => (await acksOf(a)).peers[0]?.holdsOurs === 2, 20_000, 'b to hold seq 1')
    const retry = await post(a, '?acks=1&ackTimeoutMs=10000', event)
    expect(retry.status).toBe(201)
    expect(retry.body).toMatchObject({ seq: 1, sig: stored.sig, acks: 1 })
    expect((await call(a.url, 'GET', '/v1/status')).body.heads[a.sled]).toBe(1)
    expect((await entriesOf(b, a.sled)).map((e) => e.sig)).toEqual((await entriesOf(a, a.sled)).map((e) => e.sig))
  })

  it('a node whose disk is lost after acks=1 writes gets every acknowledged entry back, then a successor', async () => {
    const b = await startNode(await tempDir())
    const dirA = await tempDir()
    const peer = ['--peer', b.url.replace('http', 'ws')]
    const a = await startNode(dirA, [...peer, '--min-acks', '1'])
    await linked(a, 1)
    const acked: Array<{ seq: number; sig: string }> = []
    for (let i = 0; i < 20; i++) {
      const batch = Array.from({ length: 10 }, (_, j) => ({ type: 'acked', payload: { i, j }, id: `e-${i}-${j}` }))
      const r = await post(a, '', batch) // --min-acks 1: every write waits for b
      expect(r.status).toBe(201)
      expect(r.body.acks).toBe(1)
      acked.push(...r.body.entries.map((e: { seq: number; sig: string }) => ({ seq: e.seq, sig: e.sig })))
    }
    // Killed at once after its last acknowledgement, and its database lost; the key survives.
    a.child.kill('SIGKILL')
    await new Promise((r) => a.child.once('exit', r))
    await rm(join(dirA, 'db'), { recursive: true, force: true })

    const a2 = await startNode(dirA, [...peer, '--min-acks', '1'])
    expect(a2.sled).toBe(a.sled)
    // It proves its head from b, then moves to a successor key (the old one signs nothing more).
    let successor = a.sled
    await waitFor(
      async () => {
        const st = await call(a2.url, 'GET', '/v1/status')
        if (st.status === 200) successor = st.body.sled
        return successor !== a.sled
      },
      30_000,
      'a successor key',
    )
    await linked(a2, 1)
    const next = await post(a2, '', { type: 'after-loss', payload: 0, id: 'after' })
    expect(next).toMatchObject({ status: 201, body: { sled: successor, seq: 1, acks: 1 } })
    const back = await entriesOf(a2, a.sled)
    expect(back.map((e) => ({ seq: e.seq, sig: e.sig }))).toEqual(acked)
    for (const node of [a2, b]) {
      const st = (await call(node.url, 'GET', '/v1/status')).body
      expect(st.forks.sleds, node.url).toBe(0)
    }
    await waitFor(async () => (await entriesOf(b, successor)).length === 2, 20_000, 'b to hold the new entry')
    expect((await entriesOf(b, a.sled)).length).toBe(200)
  })
})
