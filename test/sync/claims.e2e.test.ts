/**
 * Unsigned claims that cost a node more than they carry, sent by an authenticated peer to a real
 * node process: step 1 messages naming clients the node does not hold, and floods of tiny
 * digests and step 1s while the node holds many sleds (which any peer can make it hold: a sled is
 * only a key). Every figure is printed for the record.
 */
import { describe, expect, it } from 'vitest'
import { encodeStateVector } from '../../src/core/update-codec.js'
import { encodeDigest, encodeStep1 } from '../../src/sync/messages.js'
import { call, startNode, waitFor, type NodeProcess } from '../http/node-process.js'
import { cpuMsOf } from '../helpers/cpu.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { testKeys } from '../helpers/keys.js'
import { RssSampler } from '../helpers/rss.js'
import { sendThrowawaySleds } from '../helpers/sync-abuse.js'
import { tempDir } from '../helpers/tmp.js'

const ATTACKER = testKeys(601)
const wsUrl = (node: NodeProcess): string => node.url.replace(/^http/, 'ws')

interface AttackerLink {
  readonly sled: string
  readonly rejected: Record<string, number>
  readonly asksMerged: number
}

/** The node's view of the attacker's link. */
async function attackerLink(node: NodeProcess): Promise<AttackerLink | undefined> {
  const s = await call(node.url, 'GET', '/v1/status')
  return (s.body.peers as AttackerLink[]).find((p) => p.sled === ATTACKER.sled)
}

/**
 * Sends a step 1 that does not decode (one violation of the three a link may make) and waits
 * until the node counted it: messages on a link are handled in order, so everything sent before
 * has been handled too.
 */
async function handledSoFar(node: NodeProcess, c: HostileClient, timeoutMs: number): Promise<void> {
  await c.sendStep1(new Uint8Array([5]))
  await waitFor(
    async () => ((await attackerLink(node))?.rejected.UPDATE_MALFORMED ?? 0) >= 1,
    timeoutMs,
    'the node to handle everything sent before the marker',
  )
}

/** `n` distinct client ids the node does not hold, from `from` on. */
function madeUpClaim(from: number, n: number): Uint8Array {
  const sv = new Map<number, number>()
  for (let i = 0; i < n; i++) sv.set(from + i, 1)
  return encodeStep1(encodeStateVector(sv))
}

/** A node process made to hold 1,001 sleds by the attacker's link (a sled is only a key). */
async function holdingThousandSleds(): Promise<{ node: NodeProcess; pid: number; c: HostileClient }> {
  const node = await startNode(await tempDir())
  const c = await HostileClient.authenticated(wsUrl(node), { keys: ATTACKER })
  await sendThrowawaySleds(c, 30_000, 1000)
  await waitFor(
    async () => Object.keys((await call(node.url, 'GET', '/v1/status')).body.heads).length >= 1000,
    60_000,
    'the node to hold 1,000 sleds',
  )
  return { node, pid: node.child.pid as number, c }
}

describe('unsigned claims that cost more than they carry (node process)', () => {
  it('step 1s naming 2,000,000 clients the node does not hold leave its memory flat', async () => {
    const node = await startNode(await tempDir())
    await call(node.url, 'POST', '/v1/events', { type: 'own', payload: 1 })
    const c = await HostileClient.authenticated(wsUrl(node), { keys: ATTACKER })
    const rss = await new RssSampler(node.child.pid as number).start()
    const t0 = Date.now()
    for (let m = 0; m < 40; m++) await c.send(madeUpClaim(1 + m * 50_000, 50_000))
    // Before: the link remembered every claimed client and planned each later step 1 over all
    // of them: this took over a minute, grew the node by 200-600 MB and stalled its API 20 s.
    await handledSoFar(node, c, 30_000)
    const ms = Date.now() - t0
    rss.stop()
    const { growth } = rss.figures()
    console.log(`[made-up clients] ${JSON.stringify({ clients: 2_000_000, ms, rssGrowthMb: growth / 2 ** 20 })}`)
    expect(growth).toBeLessThan(128 * 2 ** 20)
    expect(c.open).toBe(true)
    expect((await call(node.url, 'GET', '/healthz')).status).toBe(200)
  })

  it('a flood of tiny digests costs one comparison per half resync period, not one per digest', async () => {
    const { node, pid, c } = await holdingThousandSleds()
    const lying = encodeDigest([{ client: 7, length: 3, hash: new Uint8Array(32) }])
    const frames = [
      ...Array.from({ length: 2500 }, () => encodeDigest([])),
      ...Array.from({ length: 2500 }, () => lying),
    ]
    const cpu0 = cpuMsOf(pid)
    for (let i = 0; i < frames.length; i += 500) c.sendBurst(frames.slice(i, i + 500))
    await handledSoFar(node, c, 60_000)
    const cpuMs = cpuMsOf(pid) - cpu0
    const bytes = 2500 * 2 + 2500 * lying.length
    console.log(`[digest flood] ${JSON.stringify({ sleds: 1001, digests: frames.length, bytes, cpuMs })}`)
    // Before: each digest, even an empty one, made the node recompute all its digests: ~3 ms
    // of CPU per 2-byte message at 1,000 sleds (5,000 digests: 16 s of CPU, the API stalled).
    expect(cpuMs).toBeLessThan(3000)
    expect(c.open).toBe(true)
  })

  // Every step 1 costs the node O(sleds held) of CPU (planning over what the link holds, the
  // rewind allowance, the answer's pass over every sled, the state vector after it), whatever
  // the claim says. Before: 5,000 step 1s of 4 bytes (20 KB) at 1,000 sleds cost 2.6-3.6 s of
  // CPU and delayed /healthz as long. Now a link's step 1s are planned at most every 250 ms and
  // those in between merged.
  it('a flood of tiny step 1s costs bounded CPU while the node holds 1,000 sleds', async () => {
    const { node, pid, c } = await holdingThousandSleds()
    const ask = encodeStep1(encodeStateVector(new Map()))
    const cpu0 = cpuMsOf(pid)
    for (let i = 0; i < 5000; i += 500) c.sendBurst(Array.from({ length: 500 }, () => ask))
    await handledSoFar(node, c, 60_000)
    const cpuMs = cpuMsOf(pid) - cpu0
    console.log(`[step-1 flood, 1,000 sleds] ${JSON.stringify({ asks: 5000, bytes: 5000 * ask.length, cpuMs })}`)
    expect((await attackerLink(node))?.asksMerged).toBeGreaterThan(4900)
    expect(cpuMs).toBeLessThan(1000)
  })
})
