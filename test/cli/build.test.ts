/**
 * `npm run build` produces a working executable: compiles with the build config into a scratch
 * directory and runs the compiled `bin.js` with plain node, as `npx sledlog` would.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tempDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

describe('build', () => {
  it('compiles src with tsconfig.build.json into a runnable CLI', async () => {
    // Inside node_modules so the compiled code resolves the project's dependencies as dist/ would.
    await mkdir(join(ROOT, 'node_modules/.cache'), { recursive: true })
    const out = await mkdtemp(join(ROOT, 'node_modules/.cache/sledlog-build-'))
    onTestFinished(() => rm(out, { recursive: true, force: true }))
    await run(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out],
      { cwd: ROOT },
    )
    const bin = join(out, 'src/cli/bin.js')
    const help = await run(process.execPath, [bin, '--help'])
    expect(help.stdout).toMatch(/^Usage: sledlog <command>/)
    const dir = join(await tempDir(), 'a')
    const sled = (await run(process.execPath, [bin, 'keygen', '--data', dir])).stdout.trim()
    expect(sled).toMatch(/^[0-9a-f]{64}$/)
    await run(process.execPath, [bin, 'append', '--data', dir, '--type', 'built', '--payload', '1'])
    const read = await run(process.execPath, [bin, 'read', '--data', dir])
    expect(JSON.parse(read.stdout)).toMatchObject({ sled, seq: 0, type: 'built', payload: 1 })
  })
})
