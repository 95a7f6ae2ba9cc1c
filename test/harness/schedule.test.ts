/**
 * The fault schedule (pure): deterministic for a seed, every fault healed within the run, the
 * fault lane never overlapping itself, partitions of the promised shapes, a final heal-all.
 */
import { describe, expect, it } from 'vitest'
import {
  describeAction,
  FAULT_KINDS,
  makeSchedule,
  parseFaultList,
  type FaultAction,
  type FaultKind,
  type ScheduledAction,
} from '../../src/harness/schedule.js'
import { testSeed } from '../helpers/seed.js'

const SUCCESSION_KINDS: FaultKind[] = ['rotate-partitioned', 'revoke-partitioned', 'wipe-holding-acks']

const HEAL_OF: Record<string, string> = {
  partition: 'unpartition',
  kill: 'restart',
  stop: 'cont',
  wipe: 'recover',
  'wipe-peers-down': 'peers-return',
  'rotate-partitioned': 'unpartition',
  'revoke-partitioned': 'unpartition',
  'wipe-holding-acks': 'recover-holding-acks',
  shape: 'unshape',
  hostile: 'calm',
}

function episodes(actions: readonly ScheduledAction[]): Map<number, ScheduledAction[]> {
  const out = new Map<number, ScheduledAction[]>()
  for (const a of actions) {
    if (a.episode === 0) continue
    out.set(a.episode, [...(out.get(a.episode) ?? []), a])
  }
  return out
}

describe('fault schedule', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const seed = testSeed('schedule determinism')
    const opts = { seed, durationMs: 300_000, nodes: 5, faults: [...FAULT_KINDS] }
    expect(makeSchedule(opts)).toEqual(makeSchedule({ ...opts }))
    expect(makeSchedule({ ...opts, seed: seed + 1 }).actions).not.toEqual(makeSchedule(opts).actions)
  })

  it.each([
    [3, 45_000],
    [5, 300_000],
    [4, 60_000],
    [2, 20_000],
  ])('with %i nodes over %i ms every fault is healed within the run and the run ends healed', (nodes, durationMs) => {
    for (let seed = 1; seed <= 30; seed++) {
      const s = makeSchedule({ seed, durationMs, nodes, faults: [...FAULT_KINDS] })
      const last = s.actions.at(-1)
      expect(last?.action).toEqual({ op: 'heal-all' })
      expect(last?.at).toBe(s.finalHealAt)
      expect(s.finalHealAt).toBeLessThan(durationMs)
      for (let i = 1; i < s.actions.length; i++)
        expect((s.actions[i] as ScheduledAction).at).toBeGreaterThanOrEqual((s.actions[i - 1] as ScheduledAction).at)
      for (const [, eps] of episodes(s.actions)) {
        expect(eps).toHaveLength(2)
        const [fault, heal] = eps as [ScheduledAction, ScheduledAction]
        expect(fault.heal).toBe(false)
        expect(heal.heal).toBe(true)
        expect(heal.action.op).toBe(HEAL_OF[fault.action.op])
        expect(fault.at).toBeGreaterThanOrEqual(s.warmupMs)
        expect(heal.at).toBeGreaterThan(fault.at)
        expect(heal.at).toBeLessThanOrEqual(s.finalHealAt)
        // The heal undoes exactly what the fault did.
        if ('pairs' in fault.action) expect((heal.action as { pairs: unknown }).pairs).toEqual(fault.action.pairs)
        if ('node' in fault.action && 'node' in heal.action)
          expect((heal.action as { node: number }).node).toBe(fault.action.node)
      }
      // Faults that take nodes or links away never overlap each other.
      const lane = s.actions.filter((a) => a.lane === 'fault' && a.episode !== 0)
      for (let i = 0; i < lane.length; i += 2) {
        expect(lane[i]?.episode).toBe(lane[i + 1]?.episode)
        if (i + 2 < lane.length)
          expect((lane[i + 2] as ScheduledAction).at).toBeGreaterThan((lane[i + 1] as ScheduledAction).at)
      }
    }
  })

  it('exercises every enabled kind when the run is long enough, and only enabled kinds', () => {
    for (let seed = 1; seed <= 20; seed++) {
      // The default suite's runs: the older kinds in 45 s, the key succession ones in 25 s.
      const older = FAULT_KINDS.filter((k) => !SUCCESSION_KINDS.includes(k))
      const all = makeSchedule({ seed, durationMs: 45_000, nodes: 3, faults: older })
      expect(new Set(all.actions.map((a) => a.kind))).toEqual(new Set([...older, 'final']))
      const succession = makeSchedule({ seed, durationMs: 25_000, nodes: 3, faults: SUCCESSION_KINDS })
      expect(new Set(succession.actions.map((a) => a.kind))).toEqual(new Set([...SUCCESSION_KINDS, 'final']))
      const every = makeSchedule({ seed, durationMs: 300_000, nodes: 5, faults: [...FAULT_KINDS] })
      expect(new Set(every.actions.map((a) => a.kind))).toEqual(new Set([...FAULT_KINDS, 'final']))
      const some = makeSchedule({ seed, durationMs: 45_000, nodes: 3, faults: ['kill', 'latency'] })
      expect(new Set(some.actions.map((a) => a.kind))).toEqual(new Set(['kill', 'latency', 'final']))
    }
    expect(makeSchedule({ seed: 1, durationMs: 30_000, nodes: 3, faults: [] }).actions.map((a) => a.action.op)).toEqual(
      ['heal-all'],
    )
  })

  it('skips kinds a cluster cannot have (a one-node partition or disk loss with no peer)', () => {
    const s = makeSchedule({ seed: 7, durationMs: 60_000, nodes: 1, faults: [...FAULT_KINDS] })
    const alone = ['kill', 'stop', 'hostile']
    expect(s.skipped).toEqual(FAULT_KINDS.filter((k) => !alone.includes(k)))
    expect(new Set(s.actions.map((a) => a.kind))).toEqual(new Set(['kill', 'stop', 'hostile', 'final']))
  })

  it('builds partitions of the promised shapes', () => {
    const seen = new Set<string>()
    for (let seed = 1; seed <= 60; seed++) {
      for (const nodes of [2, 3, 4, 5]) {
        const s = makeSchedule({ seed, durationMs: 300_000, nodes, faults: ['partition'] })
        for (const a of s.actions) {
          if (a.action.op !== 'partition') continue
          const p = a.action as Extract<FaultAction, { op: 'partition' }>
          seen.add(`${nodes}:${p.shape}`)
          const cut = new Set(p.pairs.map(([x, y]) => (x < y ? `${x}-${y}` : `${y}-${x}`)))
          const isCut = (x: number, y: number): boolean => cut.has(x < y ? `${x}-${y}` : `${y}-${x}`)
          seen.add(`mode:${p.mode}`)
          if (p.mode === 'one-way') {
            // Directed pairs: each from the first side (of halves and bridge) to the other.
            if (p.shape !== 'ring') for (const [x] of p.pairs) expect(p.groups[0]).toContain(x)
          } else for (const [x, y] of p.pairs) expect(x).toBeLessThan(y)
          expect(p.pairs.length).toBeGreaterThan(0)
          if (p.shape === 'halves') {
            const [l, r] = p.groups as [number[], number[]]
            expect([...l, ...r].sort()).toEqual(Array.from({ length: nodes }, (_, i) => i))
            for (const x of l) for (const y of r) expect(isCut(x, y)).toBe(true)
            for (const side of [l, r])
              for (const x of side) for (const y of side) if (x !== y) expect(isCut(x, y)).toBe(false)
          } else if (p.shape === 'bridge') {
            const [l, [bridge], r] = p.groups as [number[], [number], number[]]
            expect(l.length).toBeGreaterThan(0)
            expect(r.length).toBeGreaterThan(0)
            for (let y = 0; y < nodes; y++) if (y !== bridge) expect(isCut(bridge, y)).toBe(false)
            for (const x of l) for (const y of r) expect(isCut(x, y)).toBe(true)
          } else {
            expect(nodes).toBeGreaterThanOrEqual(4)
            const [order] = p.groups as [number[]]
            // Every node keeps exactly its two ring neighbours.
            for (let i = 0; i < nodes; i++) {
              const x = order[i] as number
              const kept = Array.from({ length: nodes }, (_, y) => y).filter((y) => y !== x && !isCut(x, y))
              expect(kept.sort()).toEqual(
                [order[(i + 1) % nodes] as number, order[(i + nodes - 1) % nodes] as number].sort(),
              )
            }
          }
        }
      }
    }
    expect(seen).toEqual(
      new Set([
        '2:halves',
        '3:halves',
        '3:bridge',
        '4:halves',
        '4:bridge',
        '4:ring',
        '5:halves',
        '5:bridge',
        '5:ring',
        'mode:cut',
        'mode:blackhole',
        'mode:one-way',
      ]),
    )
  })

  it('key succession faults isolate one node, and the heal restores exactly its links', () => {
    const seen = new Set<string>()
    for (let seed = 1; seed <= 40; seed++) {
      const s = makeSchedule({ seed, durationMs: 120_000, nodes: 4, faults: SUCCESSION_KINDS })
      for (const a of s.actions) {
        const f = a.action
        if (f.op === 'rotate-partitioned' || f.op === 'revoke-partitioned') {
          expect(f.pairs).toEqual(
            [0, 1, 2, 3].filter((j) => j !== f.node).map((j) => (j < f.node ? [j, f.node] : [f.node, j])),
          )
          seen.add(`${f.op} ${f.mode}`)
          if (f.op === 'revoke-partitioned') {
            seen.add(`revoke ${f.authority} via ${f.via}`)
            expect(f.pick).toBeGreaterThanOrEqual(0)
            expect(f.pick).toBeLessThan(1)
          }
        }
        if (f.op === 'wipe-holding-acks') {
          seen.add(`wipe-holding-acks ${f.cutOff ? 'cut off' : 'linked'}`)
          expect(f.pairs).toHaveLength(f.cutOff ? 3 : 0)
          expect(f.acks).toBeGreaterThanOrEqual(1)
          expect(f.acks).toBeLessThanOrEqual(3)
        }
      }
    }
    expect(seen).toEqual(
      new Set([
        'rotate-partitioned cut',
        'rotate-partitioned blackhole',
        'revoke-partitioned cut',
        'revoke-partitioned blackhole',
        'revoke self via cut-off',
        'revoke self via other',
        'revoke admin via cut-off',
        'revoke admin via other',
        'wipe-holding-acks cut off',
        'wipe-holding-acks linked',
      ]),
    )
    expect(describeAction({ op: 'wipe-holding-acks', node: 1, cutOff: true, acks: 2, pairs: [[0, 1]] })).toBe(
      'cut node 1 off, write to it with acks=0 and acks=2, SIGKILL it and wipe its database',
    )
  })

  it('describes actions and parses fault lists', () => {
    expect(describeAction({ op: 'wipe', node: 2 })).toMatch(/wipe its database \(key kept\)/)
    expect(describeAction({ op: 'shape', pairs: [[0, 1]], latencyMs: 50, jitterMs: 10, bytesPerSec: 131072 })).toBe(
      'slow links 0-1: 50 ms ± 10 ms, 128 KiB/s',
    )
    expect(parseFaultList('all')).toEqual([...FAULT_KINDS])
    expect(parseFaultList('none')).toEqual([])
    expect(parseFaultList('wipe, kill,kill')).toEqual(['kill', 'wipe'])
    expect(() => parseFaultList('kill,flood')).toThrow(/unknown fault kind "flood"/)
  })
})
