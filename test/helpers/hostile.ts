/**
 * In-memory sledlog docs and the shared hostile Yjs fixtures, for guard and codec tests.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import type { GuardLevel, GuardOptions } from '../../src/core/guard.js'
import { createVerifier } from '../../src/core/signing.js'
import { encodeRuns, type Run } from '../../src/core/update-codec.js'
import { signedRun, testKeys } from './keys.js'

/** One verifier shared by the tests of a file (it caches public keys). */
export const testVerifier = createVerifier()

/** Guard options with generous limits unless overridden. */
export function guardOpts(level: GuardLevel = 'full', over: Partial<Omit<GuardOptions, 'level'>> = {}): GuardOptions {
  return { verifier: testVerifier, level, maxUpdateBytes: 16 * 1024 * 1024, maxRecordBytes: 64 * 1024, ...over }
}

/** Applies runs to a doc the way the log does: as one canonical update. */
export function applyRuns(doc: Y.Doc, runs: readonly Run[]): void {
  if (runs.length > 0) Y.applyUpdate(doc, encodeRuns(runs))
}

/** A fresh doc (gc off, as the log uses) holding `runs`. */
export function docFromRuns(runs: readonly Run[]): Y.Doc {
  const doc = new Y.Doc({ gc: false })
  applyRuns(doc, runs)
  return doc
}

/** A copy of `doc` built from its full state. */
export function cloneDoc(doc: Y.Doc, gc = false): Y.Doc {
  const copy = new Y.Doc({ gc })
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
  return copy
}

/** The test key numbers of {@link threeSledRuns}. */
export const THREE_SLEDS = [1, 2, 3] as const

/** 27 entries from 3 sleds (test keys 1, 2, 3; 9 each), as runs. */
export function threeSledRuns(perSled = 9): Run[] {
  return THREE_SLEDS.map((n) => signedRun(testKeys(n), 0, perSled))
}

/**
 * The hostile Yjs fixtures, vendored from the team's shared/fixtures/yjs-hostile (found by fuzzing
 * raw `Y.applyUpdate`) so that a clean clone in CI runs them too.
 */
export const HOSTILE_FIXTURES_URL = new URL('../fixtures/yjs-hostile/', import.meta.url)

/** A hostile update from the shared fixtures. */
export interface HostileFixture {
  readonly name: string
  readonly bytes: Uint8Array
}

/** The hostile fixtures (`*.b64`); throws when the vendored directory is missing. */
export function hostileFixtures(): HostileFixture[] {
  const dir = fileURLToPath(HOSTILE_FIXTURES_URL)
  return readdirSync(dir)
    .filter((f) => f.endsWith('.b64'))
    .sort()
    .map((name) => ({
      name,
      bytes: new Uint8Array(Buffer.from(readFileSync(new URL(name, HOSTILE_FIXTURES_URL), 'utf8').trim(), 'base64')),
    }))
}
