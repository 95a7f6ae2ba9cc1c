/**
 * Data directories on media the CLI cannot write: `verify`, `status --data` and `read --data`
 * read them anyway (from a private copy when LevelDB cannot take its LOCK or write its LOG) and
 * change nothing; a node, or a write, on a full, read-only or forbidden disk fails with one line
 * naming the path and what to do, never a stack trace. Real processes on real file systems:
 * permissions through another user, read-only and full disks through a tmpfs in a private mount
 * namespace (test/cli/fs-jail.ts).
 */
import { chmod, mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'
import { type CliResult, ndjson, runCli, runMain } from './cli-process.js'
import { canMountTmpfs, inTmpfs, makeReadOnly, openToAll, outcome, restrictedUser, treeSnapshot } from './fs-jail.js'

const events = (n: number): string =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ type: 'e', payload: i })).join('\n') + '\n'

/** A stopped node's data directory with `n` entries, under a parent every user may traverse. */
async function dataDir(n: number): Promise<{ base: string; dir: string; tmp: string }> {
  const base = await tempDir()
  await openToAll(base)
  const dir = join(base, 'a')
  await runMain(['keygen', '--data', dir])
  const r = await runMain(['append', '--data', dir], { input: events(n) })
  expect(r.code, r.stderr).toBe(0)
  // A temp dir of the test's own, so what the copies leave behind can be checked.
  const tmp = join(base, 'tmp')
  await mkdir(tmp)
  await openToAll(tmp, true)
  return { base, dir, tmp }
}

/** A data directory with `n` entries, and an empty mount point and output directory for {@link inTmpfs}. */
async function jailDirs(n: number): Promise<{ dir: string; tmp: string; mnt: string; out: string }> {
  const { base, dir, tmp } = await dataDir(n)
  const mnt = join(base, 'mnt')
  const out = join(base, 'out')
  await mkdir(mnt)
  await mkdir(out)
  return { dir, tmp, mnt, out }
}

/** No stack trace, one line on stderr. */
function oneLine(r: CliResult): void {
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.stderr).not.toContain('unexpected error')
}

const leftovers = async (tmp: string): Promise<string[]> =>
  (await readdir(tmp)).filter((n) => n.startsWith('sledlog-read-'))

describe('a data directory the user cannot write', () => {
  it('verify, status and read it from a copy and change nothing; append and node refuse in one line', async () => {
    const { dir, tmp } = await dataDir(50)
    await makeReadOnly(dir)
    const before = await treeSnapshot(dir)
    const user = restrictedUser()
    const opts = { env: { TMPDIR: tmp }, ...(user === undefined ? {} : { user }) }

    const verify = await runCli(['verify', '--data', dir], opts)
    expect(verify.code, verify.stderr).toBe(0)
    expect(verify.stdout).toMatch(/50 entries checked, every signature verified/)
    expect(verify.stdout).toContain('OK: no problems found')
    expect(verify.stderr).toMatch(
      new RegExp(
        `^sledlog verify: ${dir}/db cannot be opened in place \\((EACCES|EPERM)\\); ` +
          `reading a private copy \\(\\d+\\.\\d MB\\) in ${tmp}/sledlog-read-\\w+, removed afterwards\n$`,
      ),
    )
    const status = await runCli(['status', '--data', dir, '--json'], opts)
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ entries: 50 })
    const read = await runCli(['read', '--data', dir, '--all'], opts)
    expect(read.code, read.stderr).toBe(0)
    expect(ndjson(read.stdout).map((e) => e.payload)).toEqual(Array.from({ length: 50 }, (_, i) => i))

    const append = await runCli(['append', '--data', dir, '--type', 'x'], opts)
    expect(append.code).toBe(1)
    expect(append.stderr).toMatch(
      new RegExp(
        `^sledlog append: no permission to write ${dir}/db/LOCK \\(EACCES\\) as user \\d+: ` +
          `run as the owner of ${dir}, or give this user the directory \\(chown -R\\)\n$`,
      ),
    )
    const node = await runCli(['node', '--data', dir, '--port', '0', '--log-level', 'silent'], opts)
    expect(node.code).toBe(1)
    expect(node.stdout).toBe('')
    expect(node.stderr).toMatch(/^sledlog node: no permission to write .*\/a\/db\/LOCK \(EACCES\)/)
    for (const r of [verify, status, read, append, node]) oneLine(r)

    expect(await treeSnapshot(dir)).toEqual(before)
    expect(await leftovers(tmp)).toEqual([])
  })

  it('reports a key the user may not read as one line', async () => {
    const { dir } = await dataDir(1)
    const user = restrictedUser()
    // As root the key stays root's (0600) and the CLI runs as nobody; otherwise the owner loses read.
    if (user === undefined) await chmod(join(dir, 'sled.key'), 0o000)
    else await chmod(dir, 0o755)
    const r = await runCli(['verify', '--data', dir], user === undefined ? {} : { user })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /^sledlog verify: no permission to read .*\/a\/sled\.key \(EACCES\): run as a user who may read it/,
    )
    oneLine(r)
  })
})

describe.skipIf(!canMountTmpfs())('read-only and full file systems', () => {
  it('read-only: verify, status and read work; node and append say EROFS in one line', async () => {
    const { dir, tmp, mnt, out } = await jailDirs(30)
    const jail = await inTmpfs(
      '8m',
      mnt,
      out,
      `cp -a "$SRC" "$MNT/a" && mount -o remount,ro "$MNT" || exit 9
run verify verify --data "$MNT/a"
run status status --data "$MNT/a" --json
run read read --data "$MNT/a" --all
run node node --data "$MNT/a" --port 0
run append append --data "$MNT/a" --type x`,
      { SRC: dir, TMPDIR: tmp },
    )
    expect(jail.code, jail.output).toBe(0)
    const verify = await outcome(out, 'verify')
    expect(verify.code, verify.stderr).toBe(0)
    expect(verify.stdout).toMatch(/30 entries checked/)
    expect(verify.stderr).toMatch(/cannot be opened in place \(EROFS\); reading a private copy/)
    expect(JSON.parse((await outcome(out, 'status')).stdout)).toMatchObject({ entries: 30 })
    expect(ndjson((await outcome(out, 'read')).stdout)).toHaveLength(30)

    const node = await outcome(out, 'node')
    expect(node.code).toBe(1)
    expect(node.stdout).toBe('')
    const lines = node.stderr.trim().split('\n')
    expect(lines.at(-1)).toBe(
      `sledlog node: ${mnt}/a/db/LOCK is on a read-only file system (EROFS): remount it read-write, ` +
        'or give --data a directory on another disk (read, status and verify can read it as it is)',
    )
    // The log line says the same, without a stack.
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 'fatal', data: `${mnt}/a` })
    const append = await outcome(out, 'append')
    expect(append.code).toBe(1)
    expect(append.stderr).toMatch(/^sledlog append: .*\/a\/db\/LOCK is on a read-only file system \(EROFS\)/)
    for (const r of [verify, node, append]) oneLine(r)
    expect(await leftovers(tmp)).toEqual([])
  })

  it('full: the node refuses to start in one line and loses nothing; verify still reads it', async () => {
    const { dir, tmp, mnt, out } = await jailDirs(30)
    const jail = await inTmpfs(
      '2m',
      mnt,
      out,
      `cp -a "$SRC" "$MNT/a" || exit 9
dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null
run node node --data "$MNT/a" --port 0
run fresh node --data "$MNT/fresh" --port 0
run verify verify --data "$MNT/a"
rm "$MNT/fill"
run after verify --data "$MNT/a"`,
      { SRC: dir, TMPDIR: tmp },
    )
    expect(jail.code, jail.output).toBe(0)
    const node = await outcome(out, 'node')
    expect(node.code).toBe(1)
    expect(node.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(
        `^sledlog node: the disk holding ${mnt}/a/db/\\S+ is full \\(ENOSPC\\): free space on it, ` +
          'or give --data a directory on another disk; nothing stored was lost$',
      ),
    )
    const fresh = await outcome(out, 'fresh')
    expect(fresh.code).toBe(1)
    expect(fresh.stderr).toMatch(/sledlog node: the disk holding .*fresh\S* is full \(ENOSPC\)/)
    const verify = await outcome(out, 'verify')
    expect(verify.code, verify.stderr).toBe(0)
    expect(verify.stdout).toMatch(/30 entries checked/)
    const after = await outcome(out, 'after')
    expect(after.code, after.stderr).toBe(0)
    expect(after.stdout).toMatch(/30 entries checked/)
    for (const r of [node, fresh, verify]) oneLine(r)
    expect(await leftovers(tmp)).toEqual([])
  })
})
