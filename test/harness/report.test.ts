/**
 * The replay line and the seed-derived keys: what makes a reported failure reproducible.
 */
import { describe, expect, it } from 'vitest'
import { keyPairFromSeed } from '../../src/core/signing.js'
import { attackerKeys } from '../../src/harness/forgery.js'
import { DEFAULT_ATTACKS } from '../../src/harness/hostile-peer.js'
import { keySeedOf } from '../../src/harness/random.js'
import { replayCommand, type ReplayOptions } from '../../src/harness/report.js'
import { FAULT_KINDS } from '../../src/harness/schedule.js'

const base: ReplayOptions = {
  seed: 42,
  nodes: 5,
  durationMs: 300_000,
  faults: [...FAULT_KINDS],
  rate: 20,
  ingestRate: 200,
  ingestBus: 64,
  attacks: [...DEFAULT_ATTACKS],
}

describe('replayCommand', () => {
  it('names every option that shapes the run, and only the non-default extras', () => {
    expect(replayCommand(base)).toBe(
      'sledlog harness --nodes 5 --duration 300 --seed 42 --faults all --rate 20 --ingest-rate 200 --ingest-bus 64',
    )
  })

  it('keeps the check interval and converge timeout when they were set', () => {
    const line = replayCommand({ ...base, checkIntervalMs: 500, convergeTimeoutMs: 120_000 })
    expect(line).toContain('--check-interval 500')
    expect(line).toContain('--converge-timeout 120000')
    expect(line).not.toContain('--recovery-mode')
    expect(replayCommand({ ...base, recoveryMode: 'resume' })).toContain('--recovery-mode resume')
  })

  it('spells out a fault subset in schedule order and an empty attack list as none', () => {
    const first = FAULT_KINDS[0] as (typeof FAULT_KINDS)[number]
    const last = FAULT_KINDS[FAULT_KINDS.length - 1] as (typeof FAULT_KINDS)[number]
    const line = replayCommand({ ...base, faults: [last, first], attacks: [] })
    expect(line).toContain(`--faults ${first},${last}`)
    expect(line).toContain('--attacks none')
    expect(replayCommand({ ...base, faults: [] })).toContain('--faults none')
  })
})

describe('keySeedOf', () => {
  it('is a 32-byte seed fixed by (seed, name), distinct across both', () => {
    const a = keySeedOf(7, 'node 0')
    expect(a).toHaveLength(32)
    expect(keySeedOf(7, 'node 0')).toEqual(a)
    expect(keySeedOf(8, 'node 0')).not.toEqual(a)
    expect(keySeedOf(7, 'node 1')).not.toEqual(a)
  })

  it('gives the attacker the same keys it always had for a seed (old replays stay valid)', () => {
    expect(attackerKeys(7).main.sled).toBe(keyPairFromSeed(keySeedOf(7, 'attacker')).sled)
    expect(attackerKeys(7).rebind.sled).toBe(keyPairFromSeed(keySeedOf(7, 'rebind')).sled)
  })
})
