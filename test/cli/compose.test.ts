/**
 * There is no Docker engine in CI, so the deployment files are checked by what they mean: the
 * compose file is parsed and interpolated as compose would, every service's command and
 * environment go through the CLI's real flag parser and config resolver, peers, ports, tokens,
 * allow-lists and volumes are cross-checked, and the Dockerfile's ENTRYPOINT/CMD/HEALTHCHECK are
 * run against what they name (the health check is executed against a real node).
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tlsFile } from '../helpers/tls.js'
import { parse } from 'yaml'
import { parseFlags } from '../../src/cli/args.js'
import { NODE_FLAGS } from '../../src/cli/commands/node.js'
import { COMMANDS } from '../../src/cli/main.js'
import { resolveNodeSettings, type ResolveResult } from '../../src/config/resolve.js'
import type { NodeSettings } from '../../src/config/settings.js'
import { SledNode } from '../../src/node/node.js'
import { tempDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

// ---- Dockerfile ----

interface Dockerfile {
  readonly stages: Array<{ from: string; instructions: Array<[string, string]> }>
}

/** Splits a Dockerfile into stages of (INSTRUCTION, arguments), joining continuation lines. */
function parseDockerfile(text: string): Dockerfile {
  const logical: string[] = []
  let cur = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (cur === '' && (line === '' || line.startsWith('#'))) continue
    if (line.endsWith('\\')) cur += `${line.slice(0, -1)} `
    else {
      logical.push(cur + line)
      cur = ''
    }
  }
  const stages: Dockerfile['stages'] = []
  for (const l of logical) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(l)
    if (m === null) throw new Error(`bad Dockerfile line: ${l}`)
    const [, ins, args] = m as unknown as [string, string, string]
    if (ins.toUpperCase() === 'FROM') stages.push({ from: args, instructions: [] })
    else stages.at(-1)?.instructions.push([ins.toUpperCase(), args])
  }
  return { stages }
}

/** `ENV A=1 B=2` (and the legacy `ENV A 1`) into a map. */
function envOf(instructions: Array<[string, string]>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [ins, args] of instructions) {
    if (ins !== 'ENV') continue
    if (!args.includes('=')) {
      const [k, ...v] = args.split(/\s+/)
      env[k as string] = v.join(' ')
      continue
    }
    for (const m of args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g))
      env[m[1] as string] = (m[2] as string).replace(/^"|"$/g, '')
  }
  return env
}

/** The exec-form array of an instruction (`["a", "b"]`); shell form is refused: signals would go to sh. */
function execForm(args: string): string[] {
  const v = JSON.parse(args) as unknown
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`not exec form: ${args}`)
  return v as string[]
}

// ---- compose ----

/** Compose-style interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$. */
function interpolate(value: unknown, vars: Readonly<Record<string, string>>): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{(\w+)(?:(:?)([-?])((?:[^}])*))?\}|\$(\w+)/g,
      (all, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
        if (all === '$$') return '$'
        const key = (name ?? bare) as string
        const v = vars[key]
        const unset = v === undefined || (colon === ':' && v === '')
        if (op === '-') return unset ? (arg ?? '') : (v as string)
        if (op === '?') {
          if (unset) throw new Error(`required variable ${key} is missing: ${arg ?? ''}`)
          return v as string
        }
        return v ?? ''
      },
    )
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, vars))
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, vars)]))
  return value
}

interface Service {
  build?: unknown
  image?: string
  command?: string[]
  entrypoint?: string[]
  environment?: Record<string, string | number | null>
  ports?: string[]
  volumes?: string[]
  healthcheck?: { test: string[] }
}
interface Compose {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
}

function loadCompose(vars: Readonly<Record<string, string>>): Compose {
  const raw = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Record<string, unknown>
  // x-* keys are compose extension fields (anchors live there).
  return interpolate(raw, vars) as Compose
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const runtime = dockerfile.stages.at(-1) as Dockerfile['stages'][number]
const one = (ins: string): string => {
  const found = runtime.instructions.filter(([i]) => i === ins)
  expect(found, `runtime stage ${ins}`).toHaveLength(1)
  return (found[0] as [string, string])[1]
}

const SLEDS = { SLED_A: 'a'.repeat(64), SLED_B: 'b'.repeat(64), SLED_C: 'c'.repeat(64) }
const TOKEN = 'test-token-0123456789'

/** A service's argv after the executable and its script, and its environment, as the container gets them. */
function containerArgs(svc: Service): { argv: string[]; env: Record<string, string> } {
  const entrypoint = svc.entrypoint ?? execForm(one('ENTRYPOINT'))
  const command = svc.command ?? execForm(one('CMD'))
  const env: Record<string, string> = { ...envOf(runtime.instructions) }
  for (const [k, v] of Object.entries(svc.environment ?? {})) env[k] = v === null ? '' : String(v)
  return { argv: [...entrypoint, ...command], env }
}

/** Runs a container's `sledlog node` argv through the CLI's flag parser and config resolver. */
function resolveService(svc: Service): ResolveResult {
  const { argv, env } = containerArgs(svc)
  expect(argv.slice(0, 2)).toEqual(['node', '/app/dist/src/cli/bin.js'])
  const [command, ...flags] = argv.slice(2)
  expect(COMMANDS.map((c) => c.name)).toContain(command)
  expect(command).toBe('node')
  return resolveNodeSettings({ flags: parseFlags(flags, NODE_FLAGS), env })
}

function settingsOf(compose: Compose): Map<string, NodeSettings> {
  const out = new Map<string, NodeSettings>()
  for (const [name, svc] of Object.entries(compose.services)) {
    const r = resolveService(svc)
    if (!r.ok) throw new Error(`service ${name}: ${r.problems.join('; ')}`)
    out.set(name, r.settings)
  }
  return out
}

describe('docker-compose.yml', () => {
  it('needs a token, and every service resolves to a valid node configuration', () => {
    expect(() => loadCompose({})).toThrow(/SLEDLOG_TOKEN/)
    const compose = loadCompose({ SLEDLOG_TOKEN: TOKEN })
    expect(Object.keys(compose.services)).toEqual(['node-a', 'node-b', 'node-c'])
    for (const s of settingsOf(compose).values()) {
      expect(s).toMatchObject({ host: '0.0.0.0', data: '/data', token: TOKEN, logLevel: 'info' })
      // Without sled ids in .env there is no allow-list (not an empty one that locks peers out).
      expect(s.allow).toBeUndefined()
    }
  })

  it('wires every node to every other by service name and port, with allow-lists admitting exactly its dialers', () => {
    const compose = loadCompose({ SLEDLOG_TOKEN: TOKEN, ...SLEDS })
    const settings = settingsOf(compose)
    const sledOf = (service: string): string => SLEDS[`SLED_${service.slice(-1).toUpperCase()}` as keyof typeof SLEDS]
    for (const [name, s] of settings) {
      const targets = s.peers.map((p) => {
        const u = new URL(p)
        const target = settings.get(u.hostname)
        expect(target, `${name} dials ${p}: no such service`).toBeDefined()
        expect(u.hostname).not.toBe(name)
        expect(Number(u.port), `${name} dials ${p}`).toBe(target?.port)
        return u.hostname
      })
      expect(new Set(targets).size).toBe(settings.size - 1)
      const dialers = [...settings]
        .filter(([, o]) => o.peers.some((p) => new URL(p).hostname === name))
        .map(([n]) => sledOf(n))
      expect([...(s.allow ?? [])].sort()).toEqual(dialers.sort())
    }
  })

  it('gives each node its own named volume at its data directory and its own host port', () => {
    const compose = loadCompose({ SLEDLOG_TOKEN: TOKEN })
    const settings = settingsOf(compose)
    const declared = Object.keys(compose.volumes ?? {})
    const used: string[] = []
    const hostPorts: string[] = []
    for (const [name, svc] of Object.entries(compose.services)) {
      const s = settings.get(name) as NodeSettings
      const mounts = (svc.volumes ?? []).map((v) => v.split(':'))
      const data = mounts.find(([, target]) => target === s.data)
      expect(data, `${name} mounts a volume at ${s.data}`).toBeDefined()
      expect(declared).toContain(data?.[0])
      used.push(data?.[0] as string)
      expect(svc.ports).toHaveLength(1)
      const parts = String(svc.ports?.[0]).split(':')
      expect(Number(parts.at(-1)), `${name} publishes its node port`).toBe(s.port)
      hostPorts.push(parts.slice(0, -1).join(':'))
      expect(svc.build ?? svc.image).toBeDefined()
    }
    expect(new Set(used).size).toBe(used.length)
    expect(new Set(hostPorts).size).toBe(hostPorts.length)
  })

  it('passes every security setting from the environment to every node, unset when empty', () => {
    const unset = settingsOf(loadCompose({ SLEDLOG_TOKEN: TOKEN }))
    for (const s of unset.values()) {
      expect(s.insecure).toBe(false)
      for (const k of ['apiTokensFile', 'tlsCert', 'tlsKey', 'peerCa', 'peerPins', 'allowedHosts', 'corsOrigins'])
        expect(s).not.toHaveProperty(k)
    }
    const pin = 'ab'.repeat(32)
    const set = settingsOf(
      loadCompose({
        SLEDLOG_TOKEN: TOKEN,
        SLEDLOG_INSECURE: 'true',
        SLEDLOG_API_TOKENS_FILE: '/run/secrets/api-tokens.json',
        SLEDLOG_TLS_CERT: '/run/secrets/tls.pem',
        SLEDLOG_TLS_KEY: '/run/secrets/tls.key',
        SLEDLOG_PEER_CA: '/run/secrets/ca.pem',
        SLEDLOG_PEER_PINS: pin,
        SLEDLOG_ALLOWED_HOSTS: 'sledlog.example.com',
        SLEDLOG_CORS_ORIGINS: 'https://app.example.com',
      }),
    )
    for (const s of set.values()) {
      expect(s).toMatchObject({
        insecure: true,
        apiTokensFile: '/run/secrets/api-tokens.json',
        tlsCert: '/run/secrets/tls.pem',
        tlsKey: '/run/secrets/tls.key',
        peerCa: '/run/secrets/ca.pem',
        peerPins: [pin],
        allowedHosts: ['sledlog.example.com'],
        corsOrigins: ['https://app.example.com'],
      })
    }
  })

  it('health-checks every service with the image check on /healthz', () => {
    const compose = loadCompose({ SLEDLOG_TOKEN: TOKEN })
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.healthcheck?.test?.[0], name).toBe('CMD')
      expect(svc.healthcheck?.test.slice(1)).toEqual(healthcheckArgv())
    }
  })
})

/** The HEALTHCHECK command of the image. */
function healthcheckArgv(): string[] {
  const m = /^(?:--\S+\s+)*CMD\s+(\[.*\])$/.exec(one('HEALTHCHECK'))
  expect(m, 'HEALTHCHECK ... CMD [exec form]').not.toBeNull()
  return execForm((m as RegExpExecArray)[1] as string)
}

describe('Dockerfile', () => {
  it('builds on node:20-slim with production dependencies only and runs as a non-root user', () => {
    expect(dockerfile.stages.map((s) => s.from.split(/\s+/)[0])).toEqual(['node:20-slim', 'node:20-slim'])
    const build = (dockerfile.stages[0] as Dockerfile['stages'][number]).instructions
    expect(build).toContainEqual(['RUN', 'npm run build'])
    expect(runtime.instructions.some(([i, a]) => i === 'RUN' && a.includes('npm ci --omit=dev'))).toBe(true)
    expect(one('USER')).not.toMatch(/^(root|0)$/)
    // The build script is the one package.json runs, and its output lands where ENTRYPOINT looks.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>
      scripts: Record<string, string>
    }
    expect(pkg.bin.sledlog).toBe('dist/src/cli/bin.js')
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json')
    expect(execForm(one('ENTRYPOINT'))).toEqual(['node', `/app/${pkg.bin.sledlog}`])
    expect(runtime.instructions).toContainEqual(['COPY', '--from=build /app/dist/src ./dist/src'])
    expect(existsSync(join(ROOT, 'src/cli/bin.ts'))).toBe(true)
    // The image's port is the one the node listens on by its ENV.
    expect(one('EXPOSE')).toBe(envOf(runtime.instructions).SLEDLOG_PORT)
  })

  it('CMD alone, with the image environment, is a valid node configuration', () => {
    const r = resolveService({})
    expect(r.ok && r.settings).toMatchObject({ data: '/data', host: '0.0.0.0', port: 7400 })
  })

  it('keeps what the build needs in the build context, and nothing heavy', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
    for (const heavy of ['node_modules', 'dist', '.git']) expect(ignored).toContain(heavy)
    for (const needed of ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored, `${needed} must reach the build`).not.toContain(needed)
      expect(existsSync(join(ROOT, needed)), needed).toBe(true)
    }
  })

  it('HEALTHCHECK asks /healthz: it passes against a running node and fails without one', async () => {
    const argv = healthcheckArgv()
    expect(argv.join(' ')).toContain('/healthz')
    expect(argv[0]).toBe('node')
    const node = new SledNode({ dataDir: await tempDir(), host: '127.0.0.1', port: 0, peers: [] })
    await node.start()
    onTestFinished(() => node.stop())
    const port = new URL(node.url).port
    const healthy = await run(process.execPath, argv.slice(1), { env: { ...process.env, SLEDLOG_PORT: port } })
    expect(healthy.stderr).toBe('')
    await node.stop()
    const down = await run(process.execPath, argv.slice(1), { env: { ...process.env, SLEDLOG_PORT: port } }).catch(
      (e: { code?: number }) => e,
    )
    expect((down as { code?: number }).code).toBe(1)
  })

  it('HEALTHCHECK asks /healthz over HTTPS when the node serves TLS (SLEDLOG_TLS_CERT set)', async () => {
    const argv = healthcheckArgv()
    const tls = { certFile: tlsFile('node.pem'), keyFile: tlsFile('node.key') }
    const node = new SledNode({ dataDir: await tempDir(), host: '127.0.0.1', port: 0, peers: [], tls })
    await node.start()
    onTestFinished(() => node.stop())
    const env = { ...process.env, SLEDLOG_PORT: new URL(node.url).port }
    const healthy = await run(process.execPath, argv.slice(1), { env: { ...env, SLEDLOG_TLS_CERT: tls.certFile } })
    expect(healthy.stderr).toBe('')
    // Plain HTTP to a TLS port is not healthy: the check must follow the node's setting.
    const plain = await run(process.execPath, argv.slice(1), { env }).catch((e: { code?: number }) => e)
    expect((plain as { code?: number }).code).toBe(1)
  })
})
