/**
 * The running checks' incremental copy of a node's log (src/harness/mirror.ts), fed by a fake
 * node: what counts as a node forgetting entries, and what is a fork learnt between a status and
 * the read that follows it.
 */
import { describe, expect, it } from 'vitest'
import { LogMirror } from '../../src/harness/mirror.js'

const EVIL = 'e'.repeat(64)
const HONEST = 'a'.repeat(64)

/** A node serving `state.held` entries of `sled`, or (once `forkAt` is set) only those below it. */
function fakeNode(sled: string, held: number) {
  const state = { held, forkAt: undefined as number | undefined }
  const get = async (path: string): Promise<unknown> => {
    const q = new URLSearchParams(path.split('?')[1])
    const from = Number(q.get('afterSeq') ?? -1) + 1
    const end = state.forkAt ?? state.held
    const entries = []
    for (let seq = from; seq < end; seq++) entries.push({ sled, seq, sig: `s${seq}` })
    return { entries, next: null, forked: state.forkAt === undefined ? {} : { [sled]: state.forkAt } }
  }
  return { get, state }
}

describe('log mirror', () => {
  it("a fork of the attacker's sled learnt between the status and the read is no lost entry", async () => {
    const node = fakeNode(EVIL, 41)
    const m = new LogMirror('n1')
    expect((await m.refresh({ [EVIL]: 40 }, node.get, new Set([EVIL]))).problems).toEqual([])
    node.state.held = 76
    node.state.forkAt = 1
    // The status said 75; by the read the node serves only seq 0.
    expect((await m.refresh({ [EVIL]: 75 }, node.get, new Set([EVIL]))).problems).toEqual([])
    expect(m.length(EVIL)).toBe(1)
  })

  it('an honest sled that stops being served is reported', async () => {
    const node = fakeNode(HONEST, 41)
    const m = new LogMirror('n1')
    await m.refresh({ [HONEST]: 40 }, node.get)
    node.state.held = 76
    node.state.forkAt = 41
    expect((await m.refresh({ [HONEST]: 75 }, node.get, new Set([EVIL]))).problems).toEqual([
      `n1: status says ${HONEST.slice(0, 12)} head 75, but no entry past 40 is returned`,
    ])
  })
})
