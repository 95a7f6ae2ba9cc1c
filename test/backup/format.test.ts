import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { BACKUP_FORMAT, BackupDecoder, BackupEncoder, type BackupHeader } from '../../src/backup/format.js'
import type { SledId } from '../../src/core/ids.js'
import { readLines } from '../../src/cli/lines.js'
import { prng, testSeed } from '../helpers/seed.js'

const A = 'a'.repeat(64) as SledId
const B = 'b'.repeat(64) as SledId

/** A small backup: the decoder checks structure and checksum, not signatures (the guard does). */
function sample(): string {
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    v: 1,
    node: A,
    createdAt: 1,
    sleds: { [A]: 3, [B]: 2 },
    forks: 1,
    consumers: 1,
  }
  const enc = new BackupEncoder()
  let text = enc.header(header)
  for (let i = 0; i < 3; i++) text += enc.record(A, i, `sig-a-${i}.{"x":"é\\n"}`)
  for (let i = 0; i < 2; i++) text += enc.record(B, i, `sig-b-${i}.{}`)
  text += enc.fork({ sled: B, seq: 1, records: ['r1', 'r2'] })
  text += enc.consumer({ name: 'c', cursor: { [A]: 1 } })
  return text + enc.end()
}

async function decode(text: string | Buffer): Promise<BackupDecoder> {
  const d = new BackupDecoder()
  let n = 0
  for await (const line of readLines(Readable.from([Buffer.from(text)]))) {
    n = line.n
    d.line(line.text, line.n)
  }
  d.finish(n)
  return d
}

describe('backup format', () => {
  it('reads back what it wrote', async () => {
    const d = await decode(sample())
    expect(d.records).toBe(5)
    expect(d.header?.sleds).toEqual({ [A]: 3, [B]: 2 })
  })

  it('refuses the file cut at every byte before its end', async () => {
    const bytes = Buffer.from(sample())
    for (let cut = 0; cut < bytes.length - 1; cut++) {
      await expect(decode(bytes.subarray(0, cut)), `cut at ${cut}`).rejects.toMatchObject({ code: 'BACKUP_INVALID' })
    }
    // The final newline is the only byte a reader does not need.
    await expect(decode(bytes.subarray(0, bytes.length - 1))).resolves.toBeDefined()
  })

  it('refuses every changed byte (seeded)', async () => {
    const seed = testSeed('backup format: changed bytes')
    const rng = prng(seed)
    const bytes = Buffer.from(sample())
    for (let i = 0; i < 200; i++) {
      const at = Math.floor(rng() * bytes.length)
      const copy = Buffer.from(bytes)
      copy[at] = (copy[at] as number) ^ (1 + Math.floor(rng() * 255))
      // A change to the final newline alone changes no line.
      if (at === bytes.length - 1) continue
      await expect(decode(copy), `seed ${seed}, byte ${at}`).rejects.toMatchObject({ code: 'BACKUP_INVALID' })
    }
  })

  it('refuses lines out of place: records reordered, a missing fork, a line after the trailer', async () => {
    const lines = sample().split('\n')
    const swap = [...lines]
    ;[swap[1], swap[2]] = [swap[2] as string, swap[1] as string]
    await expect(decode(swap.join('\n'))).rejects.toThrow(/expected a{12}…\/0, found a{12}…\/1/)
    const noFork = lines.filter((l) => !l.startsWith('{"fork"'))
    await expect(decode(noFork.join('\n'))).rejects.toThrow(/0 fork lines of 1/)
    await expect(decode(`${sample()}{"end":{}}\n`)).rejects.toThrow(/after the trailer/)
    await expect(decode('')).rejects.toThrow(/empty/)
    await expect(decode('{"format":"other"}\n')).rejects.toThrow(/not a sledlog backup/)
  })
})
