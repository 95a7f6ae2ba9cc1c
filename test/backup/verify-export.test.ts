import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { EXPORT_FIXTURES, exportVectors } from '../../scripts/export-vectors.js'
import { ExportVerifier } from '../../src/backup/verify-export.js'
import { verifyExport } from '../../src/cli/commands/verify.js'
import { runMain } from '../cli/cli-process.js'

const vectors = exportVectors()
const expected = JSON.parse(readFileSync(join(EXPORT_FIXTURES, 'expected.json'), 'utf8')) as Record<
  string,
  { byCode: Record<string, number>; retired?: Record<string, number>; retiredWithAdmin?: Record<string, number> }
>
const ADMIN = '2543b92ff1095511476adc8369db6ddc933665a11978dda1404ee1066ca9559d'

function check(text: string, adminKeys: string[] = []) {
  const v = new ExportVerifier({ adminKeys: adminKeys as never })
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  for (const [i, l] of lines.entries()) v.line(l, i + 1)
  return v.finish()
}

describe('export conformance vectors (test/fixtures/export)', () => {
  it('the fixture files are exactly what scripts/export-vectors.ts builds from golden.json', () => {
    const files = readdirSync(EXPORT_FIXTURES).filter((f) => f.endsWith('.ndjson'))
    expect(files.sort()).toEqual(
      Object.keys(vectors)
        .map((n) => `${n}.ndjson`)
        .sort(),
    )
    for (const [name, v] of Object.entries(vectors)) {
      expect(readFileSync(join(EXPORT_FIXTURES, `${name}.ndjson`), 'utf8'), name).toBe(v.text)
      const { text: _t, ...outcome } = v
      expect(expected[name], name).toEqual(JSON.parse(JSON.stringify(outcome)))
    }
  })

  for (const [name, want] of Object.entries(expected)) {
    it(`${name}: ${Object.keys(want.byCode).length === 0 ? 'verifies' : JSON.stringify(want.byCode)}`, () => {
      const r = check(readFileSync(join(EXPORT_FIXTURES, `${name}.ndjson`), 'utf8'))
      expect(r.byCode).toEqual(want.byCode)
      expect(r.ok).toBe(Object.keys(want.byCode).length === 0)
      expect(r.problemCount).toBe(Object.values(want.byCode).reduce((a, b) => a + b, 0))
      if (want.retired !== undefined) expect(r.retired).toEqual(want.retired)
    })
  }

  it('the golden export reads the retirements of PROTOCOL.md §9.9, with and without the admin key', () => {
    const text = readFileSync(join(EXPORT_FIXTURES, 'golden.ndjson'), 'utf8')
    expect(check(text).retired).toEqual(expected.golden?.retired)
    expect(check(text, [ADMIN]).retired).toEqual(expected.golden?.retiredWithAdmin)
    const r = check(text)
    expect(r.verified).toBe(8)
    expect(r.successions).toBe(2)
    expect(r.revocations).toBe(2)
    // S's seq 2 is the gap sentinel for producer ids 10..12.
    expect(r.sleds['03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8']).toMatchObject({
      first: 0,
      last: 3,
      gaps: 1,
      dropped: 3,
    })
  })
})

describe('sledlog verify --export', () => {
  it('exits 0 for a valid export and 1, naming the line and code, for a tampered one', async () => {
    const ok = await runMain(['verify', '--export', join(EXPORT_FIXTURES, 'golden.ndjson')])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain('OK: every record verifies')
    const bad = await runMain(['verify', '--export', join(EXPORT_FIXTURES, 'payload-changed.ndjson')])
    expect(bad.code).toBe(1)
    expect(bad.stdout).toMatch(/line 2: UPDATE_BAD_SIGNATURE/)
    const json = await runMain(['verify', '--export', join(EXPORT_FIXTURES, 'seq-missing.ndjson'), '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout).byCode).toEqual({ BACKUP_INVALID: 1 })
  })

  it('refuses a line longer than the limit as it arrives, without buffering the rest', async () => {
    let produced = 0
    // 64 MiB without a newline: the reader must stop long before the end.
    const endless = Readable.from(
      (function* () {
        for (let i = 0; i < 1024; i++) {
          produced++
          yield Buffer.alloc(64 * 1024, 0x61)
        }
      })(),
    )
    await expect(verifyExport(endless)).rejects.toMatchObject({ code: 'BACKUP_INVALID' })
    expect(produced).toBeLessThan(200)
  })
})
