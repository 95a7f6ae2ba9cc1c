/** The one mode check behind the key file, the tokens file and a client's token file (src/store/file-mode.ts). */
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fileMode, GROUP_OTHER_ANY, GROUP_OTHER_WRITE, looseMode } from '../../src/store/file-mode.js'
import { tempDir } from '../helpers/tmp.js'

describe('file modes', () => {
  it('a secret may grant group and others nothing; a grant file only not their write', () => {
    for (const mode of [0o600, 0o400, 0o700, 0o100600]) expect(looseMode(mode, GROUP_OTHER_ANY)).toBeUndefined()
    expect(looseMode(0o100644, GROUP_OTHER_ANY)).toBe('644')
    expect(looseMode(0o604, GROUP_OTHER_ANY)).toBe('604')
    expect(looseMode(0o610, GROUP_OTHER_ANY)).toBe('610')
    for (const mode of [0o600, 0o644, 0o755]) expect(looseMode(mode, GROUP_OTHER_WRITE)).toBeUndefined()
    expect(looseMode(0o620, GROUP_OTHER_WRITE)).toBe('620')
    expect(looseMode(0o100602, GROUP_OTHER_WRITE)).toBe('602')
  })

  it('reads the mode of a file; undefined when there is none; other errors are thrown', async () => {
    const dir = await tempDir()
    const file = join(dir, 'f')
    expect(await fileMode(file)).toBeUndefined()
    await writeFile(file, 'x')
    await chmod(file, 0o640)
    expect(((await fileMode(file)) as number) & 0o777).toBe(0o640)
    // A path through a file is ENOTDIR, not absent: the caller must not treat it as "no file".
    await expect(fileMode(join(file, 'below'))).rejects.toMatchObject({ code: 'ENOTDIR' })
  })
})
