/**
 * Writes the export conformance vectors (scripts/export-vectors.ts) to test/fixtures/export/:
 * one `<name>.ndjson` each and `expected.json` with every outcome. Run with
 * `npx tsx scripts/make-export-fixtures.ts`; test/backup/verify-export.test.ts checks the files
 * still match and every outcome against the verifier.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EXPORT_FIXTURES, exportVectors } from './export-vectors.js'

mkdirSync(EXPORT_FIXTURES, { recursive: true })
const expected: Record<string, unknown> = {}
for (const [name, v] of Object.entries(exportVectors())) {
  writeFileSync(join(EXPORT_FIXTURES, `${name}.ndjson`), v.text)
  const { text: _text, ...outcome } = v
  expected[name] = outcome
}
writeFileSync(join(EXPORT_FIXTURES, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`)
console.log(`wrote ${Object.keys(expected).length} export vectors to ${EXPORT_FIXTURES}`)
