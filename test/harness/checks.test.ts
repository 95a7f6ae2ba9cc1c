/**
 * The harness's checks (pure): each catches the violation it exists for when one is injected
 * into otherwise healthy logs, and stays quiet on the healthy ones.
 */
import { describe, expect, it } from 'vitest'
import {
  canonicalChain,
  checkConverged,
  checkDelivered,
  checkHostileData,
  checkIngest,
  checkInvariants,
  logFigures,
  percentile,
  type HostileSpec,
  type LogEntry,
  type NodeLog,
  type ReadFlags,
} from '../../src/harness/invariants.js'
import { SigLedger } from '../../src/harness/sig-ledger.js'

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const EVIL = 'e'.repeat(64)
const REBIND = 'f'.repeat(64)

const ev = (sled: string, seq: number, extra: Partial<LogEntry> = {}): LogEntry => ({
  sled,
  seq,
  sig: `${sled[0]}${seq}`,
  kind: 'event',
  type: 'harness.append',
  payload: { n: seq },
  ...extra,
})

/** Three nodes holding the same healthy log: A 0..4, B 0..2, the attacker's own 0..1. */
function healthy(): NodeLog[] {
  const entries = [
    ...[0, 1, 2, 3, 4].map((s) => ev(A, s)),
    ...[0, 1, 2].map((s) => ev(B, s)),
    ...[0, 1].map((s) => ev(EVIL, s, { type: 'hostile.own', payload: { n: s, variant: 0 } })),
  ]
  return ['n0', 'n1', 'n2'].map((node) => ({ node, entries: entries.map((e) => ({ ...e })) }))
}

const acked = [
  { sled: A, seq: 3, sig: 'a3', node: 'n0' },
  { sled: B, seq: 2, sig: 'b2', node: 'n1' },
]

const SPEC: HostileSpec = {
  attackerSled: EVIL,
  forbiddenSleds: [REBIND],
  ownType: 'hostile.own',
  typePrefix: 'hostile.',
  marker: 'HOSTILE-FORGED-7f3a',
}

/** Replaces node `i`'s entry at (sled, seq) (or removes it when `to` is null). */
function tamper(logs: NodeLog[], i: number, sled: string, seq: number, to: LogEntry | null): NodeLog[] {
  return logs.map((l, j) => {
    if (j !== i) return l
    const entries = l.entries.flatMap((e) => (e.sled === sled && e.seq === seq ? (to === null ? [] : [to]) : [e]))
    return { node: l.node, entries }
  })
}

describe('the checker catches injected violations', () => {
  it('healthy logs pass every check', () => {
    const logs = healthy()
    expect(checkInvariants({ logs, acked, converged: true, equivocators: new Set([EVIL]) })).toEqual([])
    expect(checkHostileData(logs, SPEC)).toEqual({ violations: [], accepted: 0 })
    expect(logFigures(logs, acked)).toEqual({
      lost: 0,
      lostWithDisk: 0,
      duplicates: 0,
      gaps: 0,
      diverged: 0,
      resigned: 0,
    })
  })

  it('a node reporting a different signature for an acknowledged append: replaced, diverged', () => {
    const logs = tamper(healthy(), 2, A, 3, ev(A, 3, { sig: 'forged' }))
    const v = checkInvariants({ logs, acked, converged: true }).join('\n')
    expect(v).toMatch(/n2: holds a different entry at acknowledged aaaaaaaaaaaa:3/)
    expect(v).toMatch(/aaaaaaaaaaaa:3 differs: n0 holds sig a3…, n2 holds forged…/)
    expect(v).toMatch(
      /n2 diverges from n0: 10 vs 10 entries, 0 only on n0, 0 only on n2, 1 with different sigs \(aaaaaaaaaaaa:3\)/,
    )
    expect(logFigures(logs, acked)).toEqual({
      lost: 1,
      lostWithDisk: 0,
      duplicates: 0,
      gaps: 0,
      diverged: 1,
      resigned: 1,
    })
  })

  it('a node missing an acknowledged append (deleted): lost, gap', () => {
    const logs = tamper(healthy(), 1, A, 3, null)
    expect(checkInvariants({ logs, acked }).join('\n')).toMatch(/n1: sled aaaaaaaaaaaa seq 4 where 3 was expected/)
    expect(checkInvariants({ logs, acked, converged: true }).join('\n')).toMatch(
      /n1: lacks acknowledged aaaaaaaaaaaa:3 \(acknowledged by n0\)/,
    )
    expect(logFigures(logs, acked)).toEqual({
      lost: 1,
      lostWithDisk: 0,
      duplicates: 0,
      gaps: 1,
      diverged: 1,
      resigned: 0,
    })
  })

  it('a seq acknowledged twice with different entries is a re-signed seq, even on no node yet', () => {
    const logs = healthy()
    const twice = [...acked, { sled: A, seq: 3, sig: 'resigned', node: 'n1' }]
    expect(checkInvariants({ logs: [], acked: twice }).join('\n')).toMatch(
      /aaaaaaaaaaaa:3 was acknowledged twice with different entries \(n0 and n1\): a re-signed seq/,
    )
    expect(logFigures(logs, twice).resigned).toBe(1)
  })

  it('a duplicated entry, and acknowledged appends missing on their own node mid-run unless it is recovering', () => {
    const [n0, ...rest] = healthy() as [NodeLog, ...NodeLog[]]
    const dup = { node: 'n0', entries: [...n0.entries.slice(0, 2), ev(A, 1), ...n0.entries.slice(2)] }
    expect(checkInvariants({ logs: [dup, ...rest] }).join('\n')).toMatch(/n0: duplicate entry aaaaaaaaaaaa:1/)
    expect(logFigures([dup, ...rest], []).duplicates).toBe(1)
    const lacking = tamper(healthy(), 0, A, 3, null)
    expect(checkInvariants({ logs: lacking, acked }).join('\n')).toMatch(/n0: lacks acknowledged aaaaaaaaaaaa:3/)
    expect(checkInvariants({ logs: lacking, acked, recovering: new Set(['n0']) }).join('\n')).not.toMatch(/lacks/)
  })

  it("a fork is a violation for honest sleds only; the attacker's slots are compared once converged", () => {
    const eq = new Set([EVIL])
    const evil = tamper(healthy(), 0, EVIL, 1, ev(EVIL, 1, { sig: 'other', type: 'hostile.own' }))
    // Mid-run a node that has not seen the second version yet may read the first: allowed.
    expect(checkInvariants({ logs: evil, equivocators: eq })).toEqual([])
    // Once converged, every node must read the same version.
    expect(checkInvariants({ logs: evil, equivocators: eq, converged: true }).join('\n')).toMatch(
      /eeeeeeeeeeee:1 differs/,
    )
    // The status counts forks and lists a few: a listed honest sled, or more forks than
    // equivocators, is a forked honest sled.
    const status = (sleds: number, first: string[]) => ({
      node: 'n0',
      forks: { sleds, first: first.map((sled) => ({ sled })) },
    })
    expect(checkInvariants({ logs: [], statuses: [status(1, [EVIL])], equivocators: eq })).toEqual([])
    expect(checkInvariants({ logs: [], statuses: [status(2, [EVIL, B])], equivocators: eq })).toEqual([
      'n0: reports 1 forked honest sled(s) (bbbbbbbbbbbb)',
    ])
    expect(checkInvariants({ logs: [], statuses: [status(3, [EVIL])], equivocators: eq })).toEqual([
      'n0: reports 2 forked honest sled(s)',
    ])
    expect(checkInvariants({ logs: [], statuses: [status(1, [EVIL])] })).toEqual([
      'n0: reports 1 forked honest sled(s) (eeeeeeeeeeee)',
    ])
  })

  it('hostile data: forgery marker, attacker types in honest sleds, the rebinding key, odd attacker entries', () => {
    const cases: Array<[LogEntry, RegExp]> = [
      [
        ev(A, 2, { type: 'harness.append', payload: { marker: 'HOSTILE-FORGED-7f3a', n: 1 } }),
        /carrying the forgery marker/,
      ],
      [ev(A, 2, { type: 'hostile.tampered' }), /honest sled holding attacker type hostile\.tampered/],
      [ev(EVIL, 1, { type: 'hostile.rebound' }), /an attacker entry of type hostile\.rebound/],
    ]
    for (const [entry, re] of cases) {
      const logs = tamper(healthy(), 1, entry.sled, entry.seq, entry)
      const r = checkHostileData(logs, SPEC)
      expect(r.accepted).toBe(1)
      expect(r.violations.join('\n')).toMatch(re)
    }
    const rebound = healthy().map((l, i) =>
      i === 2 ? { node: l.node, entries: [...l.entries, ev(REBIND, 0, { type: 'hostile.rebound' })] } : l,
    )
    expect(checkHostileData(rebound, SPEC).violations.join('\n')).toMatch(
      /n2: accepted hostile data at ffffffffffff:0: an entry of the attacker's rebinding key/,
    )
  })

  describe('ingest accounting', () => {
    const sentinel = (seq: number, from: number, to: number): LogEntry => ({
      sled: A,
      seq,
      sig: `g${seq}`,
      kind: 'gap',
      from,
      to,
    })
    const event = (seq: number, lid: number, n: number): LogEntry => ({
      sled: A,
      seq,
      sig: `e${seq}`,
      kind: 'event',
      type: 'harness.ingest',
      lid,
      payload: { n },
    })
    // lids 0,1 queued; 2..4 dropped (one sentinel); 5 queued.
    const entries = [event(0, 0, 10), event(1, 1, 11), sentinel(2, 2, 4), event(3, 5, 15)]
    const sent = [
      { lid: 0, queued: true, n: 10, at: 1000 },
      { lid: 1, queued: true, n: 11, at: 1000 },
      { lid: 2, queued: false, n: 12, at: 1000 },
      { lid: 3, queued: false, n: 13, at: 1000 },
      { lid: 4, queued: false, n: 14, at: 1000 },
      { lid: 5, queued: true, n: 15, at: 3000 },
    ]

    it('accounts every lid exactly once', () => {
      expect(checkIngest({ node: 'n0', entries, sent, exits: [] })).toEqual({
        violations: [],
        account: { events: 3, sentinels: 1, lidsInSentinels: 3, maxLid: 5, queuedButLost: 0 },
      })
    })

    it('catches a lost lid, a lid counted twice, a dropped event in the log, and a reused lid', () => {
      const missing = [event(0, 0, 10), event(1, 1, 11), sentinel(2, 3, 4), event(3, 5, 15)]
      expect(checkIngest({ node: 'n0', entries: missing, sent, exits: [] }).violations.join('\n')).toMatch(
        /lids 2\.\.2 are in no entry and no sentinel/,
      )
      const twice = [...entries.slice(0, 2), sentinel(2, 1, 4), entries[3] as LogEntry]
      expect(checkIngest({ node: 'n0', entries: twice, sent, exits: [] }).violations.join('\n')).toMatch(
        /overlaps event lid 1/,
      )
      const dropped = [event(0, 0, 10), event(1, 1, 11), event(2, 2, 12), sentinel(3, 3, 4), event(4, 5, 15)]
      expect(checkIngest({ node: 'n0', entries: dropped, sent, exits: [] }).violations.join('\n')).toMatch(
        /lid 2 was dropped \(bus full\) but is in the log/,
      )
      const reused = [event(0, 0, 10), event(1, 1, 99), sentinel(2, 2, 4), event(3, 5, 15)]
      expect(checkIngest({ node: 'n0', entries: reused, sent, exits: [] }).violations.join('\n')).toMatch(
        /lid 1 holds event n=99, but was given to event n=11/,
      )
    })

    it('a queued event in a crash sentinel is loss unless the process that queued it crashed', () => {
      const crashed = [event(0, 0, 10), sentinel(1, 1, 4), event(2, 5, 15)]
      expect(checkIngest({ node: 'n0', entries: crashed, sent, exits: [] }).violations.join('\n')).toMatch(
        /queued lid 1 ended in a sentinel though the process that queued it is still running/,
      )
      const r = checkIngest({ node: 'n0', entries: crashed, sent, exits: [{ at: 2000, crash: true }] })
      expect(r.violations).toEqual([])
      expect(r.account.queuedButLost).toBe(1)
      // A crash before the event was sent, then a graceful stop: the stop should have drained it.
      const stopped = checkIngest({
        node: 'n0',
        entries: crashed,
        sent,
        exits: [
          { at: 500, crash: true },
          { at: 2000, crash: false },
          { at: 4000, crash: true },
        ],
      })
      expect(stopped.violations.join('\n')).toMatch(
        /queued lid 1 ended in a sentinel though the process that queued it stopped gracefully/,
      )
    })
  })

  it('stream deliveries: complete, same signatures; an equivocator may have been served past its fork', () => {
    const [log] = healthy() as [NodeLog]
    const full = new Map([
      [A, ['a0', 'a1', 'a2', 'a3', 'a4']],
      [B, ['b0', 'b1', 'b2']],
      [EVIL, ['e0', 'e1', 'x2', 'x3']],
    ])
    // EVIL's entries from 2 on were served before the node learnt its fork at 2: allowed for it.
    expect(checkDelivered('sub', full, log, new Set([EVIL]))).toEqual([])
    expect(checkDelivered('sub', full, log).join('\n')).toMatch(
      /sub: received 4 entries of eeeeeeeeeeee, the log holds 2/,
    )
    // Below the fork every replica holds the same records: a different one is a violation even then.
    const other = new Map(full)
    other.set(EVIL, ['e0', 'x1', 'x2'])
    expect(checkDelivered('sub', other, log, new Set([EVIL])).join('\n')).toMatch(/received a different eeeeeeeeeeee:1/)
    const short = new Map(full)
    short.set(A, ['a0', 'a1', 'a2'])
    expect(checkDelivered('sub', short, log, new Set([EVIL]))).toEqual(['sub: received 3 of 5 entries of aaaaaaaaaaaa'])
  })

  it('percentiles (nearest rank)', () => {
    expect(percentile([], 50)).toBeNull()
    expect(percentile([5], 99)).toBe(5)
    expect(percentile([4, 1, 3, 2], 50)).toBe(2)
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        99,
      ),
    ).toBe(99)
    expect(percentile([1, 2, 3], 100)).toBe(3)
  })
})

describe('issue 16: identical reads with flags, acks lost with a disk, re-signed seqs anywhere', () => {
  const flags = (retired: Record<string, number> = {}, chains: Record<string, string> = {}): ReadFlags => ({
    forked: {},
    retired,
    chains,
  })
  /** Healthy logs where A is retired from seq 3 on every node (entries 3 and 4 flagged). */
  function retiredLogs(): NodeLog[] {
    const chain = canonicalChain({ sled: A, retiredFrom: 3, predecessors: [], successors: [], revocations: [] })
    return healthy().map((l) => ({
      node: l.node,
      entries: l.entries.map((e) => (e.sled === A && e.seq >= 3 ? { ...e, retired: true } : e)),
      flags: flags({ [A]: 3 }, { [A]: chain }),
    }))
  }

  it('the same entries with the same retired flags, forks and chains on every node pass', () => {
    const logs = retiredLogs()
    expect(checkConverged(logs)).toEqual([])
    expect(logFigures(logs, acked).diverged).toBe(0)
  })

  it('an entry read retired on one node and not on another is a divergence, though the sigs agree', () => {
    const logs = retiredLogs()
    const n1 = logs[1] as NodeLog
    logs[1] = { ...n1, entries: n1.entries.map((e) => (e.sled === A && e.seq === 4 ? { ...e, retired: false } : e)) }
    expect(checkConverged(logs).join('\n')).toMatch(
      /n1 diverges from n0: .*0 with different sigs, 1 with a different retired flag \(aaaaaaaaaaaa:4\)/,
    )
    expect(logFigures(logs, acked).diverged).toBe(1)
  })

  it('a different retirement seq, fork seq or chain is a divergence', () => {
    for (const change of [
      (f: ReadFlags): ReadFlags => ({ ...f, retired: { [A]: 2 } }),
      (f: ReadFlags): ReadFlags => ({ ...f, forked: { [B]: 1 } }),
      (f: ReadFlags): ReadFlags => ({
        ...f,
        chains: { [A]: canonicalChain({ sled: A, retiredFrom: 3, revocations: [{ fromSeq: 3 }] }) },
      }),
    ]) {
      const logs = retiredLogs()
      const n2 = logs[2] as NodeLog
      logs[2] = { ...n2, flags: change(n2.flags as ReadFlags) }
      expect(checkConverged(logs).join('\n')).toMatch(
        /n2 diverges from n0: .*reads differently: (retired|forked|chain of) /,
      )
      expect(logFigures(logs, acked).diverged).toBe(1)
    }
  })

  it('a chain read with its lists in another arrival order is the same chain', () => {
    const x = { sled: A, retiredFrom: 1, successors: [{ sled: B }, { sled: EVIL }], revocations: [{ s: 1 }, { s: 2 }] }
    const y = { ...x, successors: [{ sled: EVIL }, { sled: B }], revocations: [{ s: 2 }, { s: 1 }] }
    expect(canonicalChain(x)).toBe(canonicalChain(y))
    expect(canonicalChain(x)).not.toBe(canonicalChain({ ...x, retiredFrom: 2 }))
  })

  it('an acks=0 append lost with a disk is counted apart, never lost; an acks=N one missing is lost', () => {
    const logs = tamper(healthy(), 0, A, 4, null).map((l) => ({
      ...l,
      entries: l.entries.filter((e) => !(e.sled === A && e.seq === 4)),
    }))
    const zero = [...acked, { sled: A, seq: 4, sig: 'a4', node: 'n0', acks: 0 }]
    const gone = new Set([`${A}:4`])
    expect(checkInvariants({ logs, acked: zero, converged: true, lostWithDisk: gone })).toEqual([])
    expect(logFigures(logs, zero, gone)).toMatchObject({ lost: 0, lostWithDisk: 1, resigned: 0 })
    // Not known to be lost with a disk: lost.
    expect(logFigures(logs, zero)).toMatchObject({ lost: 1, lostWithDisk: 0 })
    expect(checkInvariants({ logs, acked: zero, converged: true }).join('\n')).toMatch(
      /lacks acknowledged aaaaaaaaaaaa:4/,
    )
    // Lost with a disk and then signed again: a re-signed seq, and the replaced entry is lost.
    const again = logs.map((l) => ({ ...l, entries: [...l.entries, ev(A, 4, { sig: 'other' })] }))
    expect(logFigures(again, zero, gone)).toMatchObject({ lost: 1, lostWithDisk: 0, resigned: 1 })
  })

  it('a subscriber may have received entries lost with a disk past the end of the log, and no others', () => {
    const [log] = healthy() as [NodeLog]
    const got = new Map([
      [A, ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6']],
      [B, ['b0', 'b1', 'b2']],
      [EVIL, ['e0', 'e1']],
    ])
    const gone = new Set([`${A}:5`, `${A}:6`])
    expect(checkDelivered('sub', got, log, new Set(), gone)).toEqual([])
    expect(checkDelivered('sub', got, log, new Set(), new Set([`${A}:5`])).join('\n')).toMatch(
      /received 7 entries of aaaaaaaaaaaa, the log holds 5/,
    )
  })

  it('the ledger catches a second signature wherever it was seen, and ignores equivocators', () => {
    const ledger = new SigLedger(new Set([EVIL]))
    ledger.seeAll([ev(A, 0), ev(A, 1)], 'the answer to a write on n0')
    expect(ledger.see(A, 1, 'a1', 'a read of n1')).toBeUndefined()
    expect(ledger.see(EVIL, 0, 'x', 'a read of n1')).toBeUndefined()
    expect(ledger.see(EVIL, 0, 'y', 'a read of n2')).toBeUndefined()
    const c = ledger.see(A, 1, 'resigned', 'subscriber@n2')
    expect(c).toMatchObject({
      sled: A,
      seq: 1,
      first: { sig: 'a1' },
      second: { sig: 'resigned', where: 'subscriber@n2' },
    })
    // Reported once per (sled, seq).
    expect(ledger.see(A, 1, 'third', 'a read of n0')).toBeUndefined()
    expect([...ledger.resignedKeys]).toEqual([`${A}:1`])
    expect(ledger.violations()).toEqual([
      'aaaaaaaaaaaa:1 was signed twice: the answer to a write on n0 saw sig a1…, subscriber@n2 saw resigned… ' +
        '(a re-signed seq)',
    ])
  })
})
