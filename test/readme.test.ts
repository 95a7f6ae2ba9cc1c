import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

describe('README', () => {
  it('the library example runs as written', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(code, 'README has a ts example').toBeDefined()
    const dir = await tempDir()
    const script = (code as string)
      .replace("from 'sledlog'", `from ${JSON.stringify(join(ROOT, 'src/index.ts'))}`)
      .replaceAll("'./data/a'", JSON.stringify(join(dir, 'a')))
    const file = join(dir, 'example.mts')
    await writeFile(file, script)
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { cwd: ROOT })
    expect(stdout).toMatch(/^0 [A-Za-z0-9_-]{86}$/m)
  })
})
