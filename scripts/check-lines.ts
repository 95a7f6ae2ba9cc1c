/**
 * Fails when a tracked source, doc or config line is longer than 120 characters: the formatter
 * wraps code, but not long strings and comments, and review reads side by side.
 *
 * Usage: `tsx scripts/check-lines.ts` (part of `npm run lint`).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const MAX = 120
const CHECKED = /\.(ts|js|mjs|json|yml|yaml)$/
const SKIPPED = /^(test\/fixtures\/|package-lock\.json$|docs\/.*\.svg$)/

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => CHECKED.test(f) && !SKIPPED.test(f))
let long = 0
for (const file of files) {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    continue // deleted in the working tree
  }
  text.split('\n').forEach((line, i) => {
    if ([...line].length > MAX) {
      long++
      console.error(`${file}:${i + 1}: ${[...line].length} characters (at most ${MAX})`)
    }
  })
}
if (long > 0) {
  console.error(`${long} line${long === 1 ? '' : 's'} longer than ${MAX} characters`)
  process.exit(1)
}
