/**
 * Who gets a slot when strangers crowd a node (src/sync/admission.ts). Pure.
 */
import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { admitLink, HandshakeSlots } from '../../src/sync/admission.js'

const sled = (c: string): SledId => c.repeat(64) as SledId

describe('handshake slots', () => {
  it('a full table evicts the oldest pending handshake of the address holding the most', () => {
    const t = new HandshakeSlots<string>({ perAddress: 3, total: 5 })
    for (const item of ['a1', 'a2', 'a3']) expect(t.admit('A', item)).toEqual({ admitted: true, evict: null })
    for (const item of ['b1', 'b2']) expect(t.admit('B', item)).toEqual({ admitted: true, evict: null })
    expect(t.count()).toBe(5)
    // Full: the newcomer from C gets a slot; A holds the most, its oldest goes.
    expect(t.admit('C', 'c1')).toEqual({ admitted: true, evict: 'a1' })
    // A and B now hold 2 each: the tie goes to the address whose oldest item is older (a2).
    expect(t.admit('D', 'd1')).toEqual({ admitted: true, evict: 'a2' })
    expect(t.admit('E', 'e1')).toEqual({ admitted: true, evict: 'b1' })
    expect(t.count()).toBe(5)
    expect([t.count('A'), t.count('B'), t.count('C'), t.count('D'), t.count('E')]).toEqual([1, 1, 1, 1, 1])
  })

  it('an address at its own cap is refused, whatever room is left', () => {
    const t = new HandshakeSlots<number>({ perAddress: 2, total: 64 })
    t.admit('A', 1)
    t.admit('A', 2)
    expect(t.admit('A', 3)).toEqual({ admitted: false })
    t.release(1)
    expect(t.admit('A', 3)).toEqual({ admitted: true, evict: null })
  })

  it('release frees exactly the item (twice is a no-op); an honest newcomer survives a flood of strangers', () => {
    const t = new HandshakeSlots<string>({ perAddress: 8, total: 64 })
    t.release('nothing')
    for (let i = 0; i < 64; i++) t.admit(`10.0.0.${i % 8}`, `s${i}`)
    const honest = t.admit('10.9.9.9', 'honest')
    expect(honest.admitted).toBe(true)
    // 63 more strangers from 63 new addresses: each evicts the oldest of a crowded address,
    // never the honest newcomer, who holds one slot and is the youngest of the singles.
    for (let i = 0; i < 63; i++) {
      const v = t.admit(`10.1.0.${i}`, `n${i}`)
      expect(v).toMatchObject({ admitted: true })
      expect((v as { evict: string | null }).evict).not.toBe('honest')
    }
    t.release('honest')
    t.release('honest')
    expect(t.count('10.9.9.9')).toBe(0)
    expect(t.count()).toBe(63)
  })
})

describe('link policy at the cap', () => {
  const link = (s: string, preferred: boolean, openedAt: number) => ({ sled: sled(s), preferred, openedAt })

  it('below the cap everyone is admitted', () => {
    expect(admitLink({ sled: sled('a'), preferred: false }, [link('b', false, 1)], 2)).toEqual({
      admitted: true,
      evict: null,
    })
  })

  it("at the cap a sled's new link replaces its oldest (a restarting peer)", () => {
    const open = [link('a', false, 1), link('b', false, 2), link('b', false, 3)]
    expect(admitLink({ sled: sled('b'), preferred: false }, open, 3)).toEqual({ admitted: true, evict: open[1] })
  })

  it('a preferred newcomer evicts the oldest stranger; a stranger is refused', () => {
    const open = [link('p', true, 1), link('s', false, 5), link('t', false, 2)]
    expect(admitLink({ sled: sled('q'), preferred: true }, open, 3)).toEqual({ admitted: true, evict: open[2] })
    expect(admitLink({ sled: sled('u'), preferred: false }, open, 3)).toEqual({ admitted: false })
  })

  it('when every link is preferred, a preferred newcomer is refused too (no one is evicted)', () => {
    const open = [link('p', true, 1), link('q', true, 2)]
    expect(admitLink({ sled: sled('r'), preferred: true }, open, 2)).toEqual({ admitted: false })
  })
})
