/**
 * Every close code the node sends is documented, with the same retry class, in
 * docs/PROTOCOL.md §8.5 and docs/ERRORS.md.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { CLOSE, isRefusal } from '../../src/sync/close-codes.js'

const doc = (name: string) => readFile(new URL(`../../docs/${name}`, import.meta.url), 'utf8')

describe('close codes', () => {
  it.each(['PROTOCOL.md', 'ERRORS.md'])('are each in the table of %s, 44xx as refusals', async (name) => {
    const text = await doc(name)
    for (const code of Object.values(CLOSE)) {
      const row = text.split('\n').find((l) => l.startsWith(`| ${code} |`))
      expect(row, `${code} missing from docs/${name}`).toBeDefined()
      const retry = row?.split('|')[3]?.trim() ?? ''
      if (isRefusal(code)) expect(retry, `${code} in docs/${name}`).toMatch(/60 s/)
      else expect(retry, `${code} in docs/${name}`).toMatch(/^yes/)
    }
  })
})
