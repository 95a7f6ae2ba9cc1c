/**
 * Memory and status size under equivocation floods, measured in a child process with
 * --expose-gc (heap after full collections): flat in the number of equivocations, at most two
 * proof records per forked sled beyond what the doc holds anyway.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/fork-memory.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Point {
  readonly heap: number
  readonly status: number
}

/** What the fixture prints. */
interface Measured {
  readonly oneBefore: Point
  readonly oneAfter: Point
  readonly oneAgain: Point
  readonly manyBefore: Point
  readonly manyForked: Point
  readonly manyAfter: Point
  readonly forks: { readonly sleds: number; readonly equivocations: number }
}

function measure(dir: string): Promise<Measured> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', FIXTURE, dir], { cwd: ROOT })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`fixture exited ${code}: ${err}`)),
    ),
  )
}

it('keeps heap and status flat under 20,000 equivocations of one sled and 1,400 of 200 sleds of 60 KB', async () => {
  const m = await measure(await tempDir())
  const MB = 1024 * 1024
  console.log(
    `[fork memory] one sled: +${((m.oneAfter.heap - m.oneBefore.heap) / MB).toFixed(2)} MB after 10,000 ` +
      `equivocations, +${((m.oneAgain.heap - m.oneAfter.heap) / MB).toFixed(2)} MB after 10,000 more; status ` +
      `${m.oneAgain.status} B. 200 sleds: +${((m.manyForked.heap - m.manyBefore.heap) / MB).toFixed(1)} MB forked, ` +
      `+${((m.manyAfter.heap - m.manyForked.heap) / MB).toFixed(1)} MB after 1,000 more versions; status ` +
      `${m.manyAfter.status} B`,
  )
  expect(m.forks).toMatchObject({ sleds: 201, equivocations: 21_200 })
  // 10,000 re-signed 4 KB entries are 40 MB of versions: none of them is kept but the proof.
  expect(m.oneAfter.heap - m.oneBefore.heap).toBeLessThan(2 * MB)
  expect(m.oneAgain.heap - m.oneAfter.heap).toBeLessThan(1 * MB)
  expect(m.oneAgain.status - m.oneBefore.status).toBeLessThan(100)
  // 200 forked sleds: at most their two proof records each (60 KB), whatever else they sign.
  expect(m.manyAfter.heap - m.manyBefore.heap).toBeLessThan(200 * 2 * 61_000 + 2 * MB)
  expect(m.manyAfter.status).toBeLessThan(2000)
}, 300_000)
