/**
 * Writes test/fixtures/golden.json: the golden test vectors of docs/PROTOCOL.md.
 *
 * Run with `npx tsx scripts/make-golden.ts`. Everything is derived from fixed seeds (bytes
 * 0x00..0x1f and 0x20..0x3f) with fixed timestamps and nonces; Ed25519 signatures are
 * deterministic (RFC 8032), so the output is byte-for-byte stable. The vectors and their expected
 * outcomes are defined in scripts/golden-vectors.ts, which refuses to build a fixture the
 * reference code disagrees with; test/core/golden.test.ts checks that the code still reproduces
 * the fixture byte for byte and outcome for outcome, so a change to any wire format or rule
 * shows up as a failing test, not a silent fork.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildGolden, goldenJson } from './golden-vectors.js'

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'golden.json')
writeFileSync(out, goldenJson(await buildGolden()))
console.log(`wrote ${out}`)
