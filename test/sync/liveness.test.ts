/**
 * Link liveness (src/sync/liveness.ts). Pure: a link is dead after an interval without a pong,
 * unless the pong is plausibly late behind queued or arriving data, for a bounded number of
 * intervals.
 */
import { describe, expect, it } from 'vitest'
import { Liveness } from '../../src/sync/liveness.js'

describe('Liveness', () => {
  it('pings while pongs come back; dead after one interval without one on an idle link', () => {
    const l = new Liveness()
    expect(l.tick(0)).toBe('ping')
    l.pong()
    expect(l.tick(0)).toBe('ping')
    // What this side sends is lost: no pong; only small messages from the peer arrive.
    l.received(200)
    expect(l.tick(0)).toBe('dead')
  })

  it('excuses a late pong behind our own queue or the peer streaming to us, a bounded number of times', () => {
    const l = new Liveness({ excuseBytes: 1000, maxExcused: 3 })
    expect(l.tick(5000)).toBe('ping') // the ping goes out behind 5000 queued bytes
    expect(l.tick(0)).toBe('ping') // late, excused by the queue it waited behind
    l.received(4000) // the peer streams to us: its pong is behind its data
    expect(l.tick(0)).toBe('ping')
    l.received(4000)
    expect(l.tick(0)).toBe('ping')
    l.received(4000)
    expect(l.tick(0)).toBe('dead') // three in a row were excused; no more
  })

  it('a pong resets the excuses', () => {
    const l = new Liveness({ excuseBytes: 1000, maxExcused: 1 })
    expect(l.tick(5000)).toBe('ping')
    expect(l.tick(5000)).toBe('ping') // excused once
    l.pong()
    expect(l.tick(5000)).toBe('ping')
    expect(l.tick(0)).toBe('ping') // excused again: the run restarted after the pong
    expect(l.tick(0)).toBe('dead')
  })
})
