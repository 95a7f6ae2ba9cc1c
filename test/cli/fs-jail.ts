/**
 * Disks that fail the way operators' disks do, for the read-only and disk-full tests:
 *
 * - permissions that bite: tests run as root here, where chmod 0555 stops nothing, so the CLI
 *   runs as `nobody` over a tree it does not own (as any other user, over its own tree);
 * - a read-only or full file system: a small tmpfs mounted in a private mount namespace
 *   (`unshare -Urm`, no privileges needed where user namespaces are enabled), remounted
 *   read-only or filled up, with the CLI run inside it by a shell script.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmod, chown, readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { CLI_ARGV, CLI_CWD, type CliResult } from './cli-process.js'

const NOBODY = { uid: 65534, gid: 65534 }

/** The user the CLI runs as so that permissions bite: nobody when the test runs as root. */
export function restrictedUser(): { uid: number; gid: number } | undefined {
  return process.getuid?.() === 0 ? NOBODY : undefined
}

/**
 * Makes `dir` (a data directory) read-only for {@link restrictedUser}: owned by it, directories
 * 0555, files 0444, the key 0400 (any looser and the key is refused). Its parents must let
 * that user through (see {@link openToAll}).
 */
export async function makeReadOnly(dir: string): Promise<void> {
  const user = restrictedUser()
  const walk = async (path: string): Promise<void> => {
    const st = await stat(path)
    if (user !== undefined) await chown(path, user.uid, user.gid)
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await walk(join(path, name))
      await chmod(path, 0o555)
    } else await chmod(path, path.endsWith('sled.key') ? 0o400 : 0o444)
  }
  await walk(dir)
  // Let the test's cleanup (as root, or the owner) remove it.
  onTestFinished(async () => {
    const open = async (path: string): Promise<void> => {
      const st = await stat(path).catch(() => undefined)
      if (st?.isDirectory() !== true) return
      await chmod(path, 0o755)
      for (const name of await readdir(path)) await open(join(path, name))
    }
    await open(dir)
  })
}

/** Lets every user traverse and read `dir` (temp dirs are 0700), and write it when `writable`. */
export async function openToAll(dir: string, writable = false): Promise<void> {
  await chmod(dir, writable ? 0o1777 : 0o755)
}

/** Names, sizes and modification times of every file under `dir`: proof a command changed nothing. */
export async function treeSnapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (path: string, rel: string): Promise<void> => {
    for (const name of await readdir(path)) {
      const st = await stat(join(path, name))
      if (st.isDirectory()) await walk(join(path, name), `${rel}${name}/`)
      else out[`${rel}${name}`] = `${st.size} ${st.mtimeMs} ${(st.mode & 0o777).toString(8)}`
    }
  }
  await walk(dir, '')
  return out
}

let namespaces: boolean | undefined

/** True when this machine lets an unprivileged process mount a tmpfs in a private namespace. */
export function canMountTmpfs(): boolean {
  namespaces ??=
    spawnSync('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt'], {
      stdio: 'ignore',
    }).status === 0
  return namespaces
}

/**
 * Runs `script` (sh) in a private mount namespace where `$MNT` is a fresh tmpfs of `size`
 * (e.g. `2m`), with a shell function `run NAME ARGS...` that runs `sledlog ARGS...` and keeps its
 * stdout, stderr and exit code for {@link outcome}. `vars` become environment variables.
 */
export async function inTmpfs(
  size: string,
  mnt: string,
  out: string,
  script: string,
  vars: Readonly<Record<string, string>> = {},
): Promise<{ code: number | null; output: string }> {
  const [node, ...cli] = CLI_ARGV
  const prelude = [
    'set -u',
    `mount -t tmpfs -o size=${size} tmpfs "$MNT"`,
    `sledlog() { "$NODE" ${cli.map((a) => `'${a}'`).join(' ')} "$@"; }`,
    'run() { name=$1; shift; sledlog "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" < /dev/null; ' +
      'echo $? > "$OUT/$name.code"; }',
  ].join('\n')
  const child = spawn('unshare', ['-Urm', 'sh', '-c', `${prelude}\n${script}`], {
    cwd: CLI_CWD,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      NODE: node as string,
      MNT: mnt,
      OUT: out,
      ...vars,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s))
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, output }
}

/** What `run NAME …` recorded in {@link inTmpfs}. */
export async function outcome(out: string, name: string): Promise<CliResult> {
  const read = (ext: string): Promise<string> => readFile(join(out, `${name}.${ext}`), 'utf8').catch(() => '')
  return {
    code: Number((await read('code')).trim()),
    signal: null,
    stdout: await read('out'),
    stderr: await read('err'),
  }
}
