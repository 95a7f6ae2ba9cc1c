/**
 * The bookkeeping behind replicated acknowledgements, with fake links and receipts (pure: no
 * sockets, fake timers): who counts, one count per peer sled over its links, and waits that
 * resolve when N counted peers cover a length, time out, or end when the tracker stops.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import {
  configuredPeerCount,
  countsForAcks,
  PeerHolds,
  type AckWaitOutcome,
  type LinkKey,
} from '../../src/sync/peer-holds.js'

const sled = (c: string): SledId => c.repeat(64) as SledId
const SELF = sled('0')
const B = sled('b')
const C = sled('c')
const D = sled('d')
const STRANGER = sled('e')

/** A fake link: an object whose `closed` the test flips. */
function link(): LinkKey & { closed: boolean } {
  return { closed: false }
}

/** A tracker where B, C and D count (as if allow-listed), STRANGER does not. */
function tracker(): PeerHolds {
  const allow = new Set([B, C, D])
  return new PeerHolds((s) => countsForAcks({ self: SELF, allow, peers: [] }, new Set(), s))
}

/** Records how a wait ended, without awaiting it. */
function watch(p: Promise<AckWaitOutcome>): { outcome: AckWaitOutcome | null } {
  const box: { outcome: AckWaitOutcome | null } = { outcome: null }
  void p.then((o) => {
    box.outcome = o
  })
  return box
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Fakes only the waits' timeouts: `flush` still runs on a real setImmediate. */
function fakeTimeouts(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
}

afterEach(() => {
  vi.useRealTimers()
})

describe('who counts for acknowledgements', () => {
  it('with an allow-list: its sleds, never this node itself, whatever was dialed', () => {
    const c = { self: SELF, allow: new Set([B, C, SELF]), peers: ['ws://x:1'] }
    expect(countsForAcks(c, new Set([D]), B)).toBe(true)
    expect(countsForAcks(c, new Set([D]), D)).toBe(false) // dialed, but off the list (refused anyway)
    expect(countsForAcks(c, new Set(), SELF)).toBe(false)
    expect(countsForAcks(c, new Set(), STRANGER)).toBe(false)
    expect(configuredPeerCount(c)).toBe(2) // its own sled on the list is not a peer
  })

  it('without an allow-list: only sleds reached by dialing a configured URL', () => {
    const c = { self: SELF, peers: ['ws://b:1', 'ws://c:1'] }
    const dialed = new Set([B])
    expect(countsForAcks(c, dialed, B)).toBe(true)
    expect(countsForAcks(c, dialed, C)).toBe(false) // configured URL not reached yet
    expect(countsForAcks(c, dialed, STRANGER)).toBe(false) // dialed in: a throwaway key
    expect(configuredPeerCount(c)).toBe(2)
    expect(configuredPeerCount({ peers: [] })).toBe(0)
  })
})

describe('PeerHolds', () => {
  it('counts one per peer sled, the longest receipt over its open links', () => {
    const h = tracker()
    const b1 = link()
    const b2 = link()
    h.linkReady(b1, B)
    h.linkReady(b2, B)
    h.linkHolds(b1, B, 5)
    h.linkHolds(b2, B, 9)
    h.linkHolds(b1, B, 3) // lower: stale, changes nothing
    expect(h.heldBy(9)).toEqual([B])
    expect(h.heldBy(10)).toEqual([])
    expect(h.connected()).toEqual([B])
    expect(h.peers([C])).toEqual([
      { sled: B, connected: true, holdsOurs: 9 },
      { sled: C, connected: false, holdsOurs: null },
    ])
    // The link with the longer receipt goes: the other's still counts.
    b2.closed = true
    expect(h.heldBy(9)).toEqual([])
    expect(h.heldBy(5)).toEqual([B])
    h.linkClosed(b2)
    h.linkClosed(b1)
    expect(h.connected()).toEqual([])
    expect(h.heldBy(0)).toEqual([])
  })

  it("a stranger's receipts, however long, count for nothing; a liar counts as one peer", async () => {
    const h = tracker()
    const s = link()
    const b = link()
    h.linkReady(s, STRANGER)
    h.linkHolds(s, STRANGER, Number.MAX_SAFE_INTEGER)
    h.linkReady(b, B)
    h.linkHolds(b, B, Number.MAX_SAFE_INTEGER) // B lies: it holds everything forever
    expect(h.connected()).toEqual([B])
    expect(await h.wait(100, 1, 1000)).toEqual({ kind: 'acked', heldBy: [B] })
    fakeTimeouts()
    const two = watch(h.wait(100, 2, 1000))
    vi.advanceTimersByTime(1000)
    await flush()
    expect(two.outcome).toEqual({ kind: 'timeout', heldBy: [B] })
  })

  it('resolves a wait once N counted peers cover its length, in any order of receipts', async () => {
    fakeTimeouts()
    const h = tracker()
    const [b, c, d] = [link(), link(), link()]
    h.linkReady(b, B)
    h.linkReady(c, C)
    h.linkReady(d, D)
    const w10 = watch(h.wait(10, 2, 5000)) // seqs < 10, by two peers
    const w20 = watch(h.wait(20, 2, 5000))
    const w5 = watch(h.wait(5, 1, 5000))
    expect(h.waiting).toBe(3)
    h.linkHolds(c, C, 12)
    await flush()
    expect(w5.outcome).toEqual({ kind: 'acked', heldBy: [C] })
    expect(w10.outcome).toBeNull() // one peer of two
    h.linkHolds(b, B, 30)
    await flush()
    expect(w10.outcome).toEqual({ kind: 'acked', heldBy: [B, C] })
    expect(w20.outcome).toBeNull() // C holds only 12
    h.linkHolds(d, D, 20)
    await flush()
    expect(w20.outcome).toEqual({ kind: 'acked', heldBy: [B, D] })
    expect(h.waiting).toBe(0)
  })

  it('a wait already covered resolves at once; one that is not times out with who held it', async () => {
    fakeTimeouts()
    const h = tracker()
    const b = link()
    h.linkReady(b, B)
    h.linkHolds(b, B, 7)
    expect(await h.wait(7, 1, 50)).toEqual({ kind: 'acked', heldBy: [B] })
    const late = watch(h.wait(8, 1, 50))
    vi.advanceTimersByTime(49)
    await flush()
    expect(late.outcome).toBeNull()
    vi.advanceTimersByTime(1)
    await flush()
    expect(late.outcome).toEqual({ kind: 'timeout', heldBy: [] })
    expect(h.waiting).toBe(0)
    // A receipt after the timeout changes nothing for it (and throws nothing).
    h.linkHolds(b, B, 100)
    expect(late.outcome).toEqual({ kind: 'timeout', heldBy: [] })
  })

  it('a peer reached by dialing starts to count once it is (its earlier receipts included)', async () => {
    const dialed = new Set<SledId>()
    const h = new PeerHolds((s) => countsForAcks({ self: SELF, peers: ['ws://b:1'] }, dialed, s))
    const inbound = link()
    h.linkReady(inbound, B)
    h.linkHolds(inbound, B, 4)
    const w = watch(h.wait(4, 1, 10_000))
    await flush()
    expect(w.outcome).toBeNull() // B dialed in: not known as the configured peer yet
    dialed.add(B) // this node's dialer reached B
    h.linkReady(link(), B)
    await flush()
    expect(w.outcome).toEqual({ kind: 'acked', heldBy: [B] })
  })

  it('stop ends every wait, and later waits at once', async () => {
    const h = tracker()
    const b = link()
    h.linkReady(b, B)
    h.linkHolds(b, B, 2)
    const w = watch(h.wait(3, 1, 60_000))
    h.stop()
    await flush()
    expect(w.outcome).toEqual({ kind: 'stopped', heldBy: [] })
    expect(await h.wait(1, 1, 60_000)).toEqual({ kind: 'stopped', heldBy: [B] })
    expect(h.waiting).toBe(0)
  })

  it('resolves thousands of waits in order as one peer catches up', async () => {
    fakeTimeouts()
    const h = tracker()
    const b = link()
    h.linkReady(b, B)
    const waits = Array.from({ length: 5_000 }, (_, i) => watch(h.wait(5_000 - i, 1, 60_000)))
    h.linkHolds(b, B, 2_500)
    await flush()
    const done = waits.filter((w) => w.outcome !== null).length
    expect(done).toBe(2_500)
    expect(h.waiting).toBe(2_500)
    h.linkHolds(b, B, 5_000)
    await flush()
    expect(waits.every((w) => w.outcome?.kind === 'acked')).toBe(true)
    expect(h.waiting).toBe(0)
  })
})
