/**
 * The event stream against real node processes: resume with Last-Event-ID after a disconnect
 * mid-stream (history and live, two sleds) with no gap and no duplicate; metrics of a peered node.
 */
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'
import { parseExposition, sampleValue } from './exposition-parser.js'
import { call, startNode, waitFor, type NodeProcess } from './node-process.js'
import { SseClient, type SseEvent } from './sse-client.js'

const events = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ type: tag, payload: i }))
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

/** Per-sled seqs of the entry events, in arrival order. */
function seqs(list: readonly SseEvent[]): Record<string, number[]> {
  const out: Record<string, number[]> = {}
  for (const e of list) {
    if (e.event !== 'entry') continue
    const { sled, seq } = JSON.parse(e.data) as { sled: string; seq: number }
    ;(out[sled] ??= []).push(seq)
  }
  return out
}

function merge(a: Record<string, number[]>, b: Record<string, number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {}
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) out[k] = [...(a[k] ?? []), ...(b[k] ?? [])]
  return out
}

async function holds(node: NodeProcess, heads: Record<string, number>): Promise<void> {
  await waitFor(
    async () => {
      const s = await call(node.url, 'GET', '/v1/status')
      return Object.entries(heads).every(([sled, h]) => s.body.heads[sled] === h) ? true : undefined
    },
    15_000,
    `${node.url} to hold ${JSON.stringify(heads)}`,
  )
}

describe('GET /v1/stream (node processes)', () => {
  it('resumes with Last-Event-ID after disconnects in history and live, with no gap and no duplicate', async () => {
    const a = await startNode(await tempDir())
    const b = await startNode(await tempDir(), ['--peer', a.url.replace(/^http/, 'ws')])
    for (let i = 0; i < 3; i++) {
      await call(a.url, 'POST', '/v1/events', events(10, 'a'))
      await call(b.url, 'POST', '/v1/events', events(10, 'b'))
    }
    await holds(b, { [a.sled]: 29, [b.sled]: 29 })
    const [first, second] = [a.sled, b.sled].sort() as [string, string]

    // History: read the first sled whole and half the second, then drop the connection.
    const s1 = await SseClient.open(`${b.url}/v1/stream?from=start`)
    const part1 = await s1.until((_, all) => all.length === 45)
    s1.close()
    expect(seqs(part1)).toEqual({ [first]: range(30), [second]: range(15) })
    expect(s1.lastEventId).toBe(`${first.slice(0, 16)}:29,${second.slice(0, 16)}:14`)

    // Meanwhile both sleds grow.
    await call(a.url, 'POST', '/v1/events', events(20, 'a'))
    await call(b.url, 'POST', '/v1/events', events(20, 'b'))
    await holds(b, { [a.sled]: 49, [b.sled]: 49 })

    // Resume: everything after the cursor, then live.
    const s2 = await SseClient.open(`${b.url}/v1/stream?from=start`, { 'last-event-id': s1.lastEventId })
    const part2 = await s2.until((e) => e.event === 'live')
    expect(merge(seqs(part1), seqs(part2))).toEqual({ [first]: range(50), [second]: range(50) })
    expect(part2.at(-1)?.id).toBe(`${first.slice(0, 16)}:49,${second.slice(0, 16)}:49`)

    // Live: entries replicated from A arrive; drop the connection after a few.
    await call(a.url, 'POST', '/v1/events', events(10, 'a'))
    const live1 = await s2.until((_, all) => all.length === 3)
    s2.close()
    await holds(b, { [a.sled]: 59 })
    const s3 = await SseClient.open(`${b.url}/v1/stream`, { 'last-event-id': s2.lastEventId })
    const live2 = await s3.until((e) => e.event === 'live')
    expect(merge(seqs(live1), seqs(live2))).toEqual({ [a.sled]: range(10).map((i) => 50 + i) })

    // A stream that saw no entry resumes from its `live` id, not from "now" at reconnect time.
    const idle = await SseClient.open(`${b.url}/v1/stream?from=now&sled=${b.sled}`)
    expect((await idle.next()).event).toBe('live')
    idle.close()
    await call(b.url, 'POST', '/v1/events', events(5, 'b'))
    const back = await SseClient.open(`${b.url}/v1/stream?from=now&sled=${b.sled}`, {
      'last-event-id': idle.lastEventId,
    })
    const missed = await back.until((e) => e.event === 'live')
    expect(seqs(missed)).toEqual({ [b.sled]: range(5).map((i) => 50 + i) })
    s3.close()
    back.close()

    // Metrics of both ends of the link.
    const mb = parseExposition(await (await fetch(`${b.url}/metrics`)).text())
    const out = { peer: a.url.replace(/^http/, 'ws'), direction: 'out' }
    expect(sampleValue(mb, 'sledlog_peer_connected', out)).toBe(1)
    expect(sampleValue(mb, 'sledlog_peer_synced', out)).toBe(1)
    expect(sampleValue(mb, 'sledlog_peer_entries_received_total', out)).toBe(60)
    expect(sampleValue(mb, 'sledlog_entries', { sled: a.sled })).toBe(60)
    expect(sampleValue(mb, 'sledlog_appends_total')).toBe(55)
    const ma = parseExposition(await (await fetch(`${a.url}/metrics`)).text())
    expect(sampleValue(ma, 'sledlog_peers')).toBe(1)
    expect(sampleValue(ma, 'sledlog_peer_connected', { direction: 'in', remote_sled: b.sled })).toBe(1)
    // An inbound link is labelled by the sled it proved, never by its ephemeral address and port.
    expect(sampleValue(ma, 'sledlog_peer_links', { direction: 'in', remote_sled: b.sled, peer: '' })).toBe(1)
    for (const s of ma.get('sledlog_peer_connected')?.samples ?? []) expect(s.labels.peer ?? '').not.toMatch(/:\d+$/)
    await waitFor(async () => {
      const m = parseExposition(await (await fetch(`${a.url}/metrics`)).text())
      return sampleValue(m, 'sledlog_entries', { sled: b.sled }) === 55 ? true : undefined
    })
    expect(sampleValue(ma, 'sledlog_subscribers')).toBe(0)
    for (const [name, f] of [...ma, ...mb]) {
      expect(f.help.length, name).toBeGreaterThan(0)
      if (f.type === 'counter') expect(name).toMatch(/_total$/)
      for (const s of f.samples) expect(Number.isFinite(s.value), name).toBe(true)
    }
  })
})
