import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { planRelay, type RelayLink } from '../../src/sync/relay-plan.js'

const A = 'a'.repeat(64) as SledId
const B = 'b'.repeat(64) as SledId
const link = (remoteSled: SledId | null, ready = true): RelayLink => ({ remoteSled, ready })
const actions = (links: RelayLink[], origin: unknown): Array<string | undefined> => {
  const plan = planRelay(links, origin)
  return links.map((l) => plan.get(l))
}

describe('planRelay', () => {
  it('sends a local append once per peer, on the oldest ready link', () => {
    const links = [link(A), link(B), link(A), link(B)]
    expect(actions(links, undefined)).toEqual(['send', 'send', 'held', 'held'])
  })

  it('never sends a change back to the peer it came from, over any of its links', () => {
    const links = [link(A), link(B), link(A), link(B)]
    expect(actions(links, links[2])).toEqual(['held', 'send', 'held', 'held'])
  })

  it('still knows the origin peer when the origin link has already left the list', () => {
    const gone = link(A)
    const links = [link(B), link(A)]
    expect(actions(links, gone)).toEqual(['send', 'held'])
  })

  it('leaves out links that are not ready and picks the next ready link to the peer', () => {
    const links = [link(A, false), link(null, false), link(A)]
    expect(actions(links, undefined)).toEqual([undefined, undefined, 'send'])
  })
})
