import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js'
import { ROUTES } from '../../src/http/api.js'
import { HTTP_STATUS } from '../../src/http/status-codes.js'

describe('docs/API.md', () => {
  it('lists every route and method, and the status of every error code', async () => {
    const doc = await readFile(new URL('../../docs/API.md', import.meta.url), 'utf8')
    const table = doc.split('\n').filter((l) => l.startsWith('| `'))
    for (const route of ROUTES) {
      const path = route.path.replace(/:name/g, 'NAME').replace(/:sled/g, 'SLED')
      for (const method of Object.keys(route.methods)) {
        if (path === '/v1/sync') continue // websocket only: listed without a method
        expect(
          table.some((l) => l.startsWith(`| \`${method} ${path}\` |`)),
          `${method} ${path} in the route table`,
        ).toBe(true)
        expect(doc, `${method} ${path} section`).toMatch(
          new RegExp(`^#+ ${method} ${path.replace(/[/]/g, '\\/')}$`, 'm'),
        )
      }
    }
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(doc, `${code} in the status table`).toContain(`| ${code} | ${HTTP_STATUS[code]} |`)
    }
  })
})
