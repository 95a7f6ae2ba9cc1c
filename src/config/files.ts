/**
 * Checks the files node settings name (API tokens, TLS certificate and key, peer CA) before the
 * node starts, so a typo in a path or a key that does not match its certificate is one more line
 * in the CONFIG_INVALID list instead of a failure half-way through start-up. Never prints what
 * a file holds.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { NamedFile } from './resolve.js'

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** The certificates of a PEM bundle, in file order; throws when one does not parse. */
export function pemCertificates(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block))
}

/** Why a file cannot be read, in words; undefined when it can. */
async function read(path: string): Promise<{ text: string } | { why: string }> {
  try {
    return { text: await readFile(path, 'utf8') }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { why: `file not found: ${path}` }
    if (code === 'EACCES' || code === 'EPERM') return { why: `no permission to read ${path} (${code})` }
    if (code === 'EISDIR') return { why: `${path} is a directory, not a file` }
    return { why: `cannot read ${path} (${code ?? (err as Error).message})` }
  }
}

/** Problems with the files `files` name; one line each, labelled like the resolver's. */
export async function checkNamedFiles(files: readonly NamedFile[]): Promise<string[]> {
  const problems: string[] = []
  let cert: { file: NamedFile; leaf: X509Certificate } | undefined
  let key: { file: NamedFile; key: KeyObject } | undefined
  for (const file of files) {
    const r = await read(file.path)
    if ('why' in r) {
      problems.push(`${file.label}: ${r.why}`)
      continue
    }
    const bad = (why: string): void => {
      problems.push(`${file.label}: ${file.path} ${why}`)
    }
    switch (file.setting) {
      case 'tlsCert':
      case 'peerCa': {
        let certs: X509Certificate[]
        try {
          certs = pemCertificates(r.text)
        } catch (err) {
          bad(`holds a certificate that does not parse (${(err as Error).message})`)
          break
        }
        if (certs.length === 0) bad('holds no PEM certificate (-----BEGIN CERTIFICATE-----)')
        else if (file.setting === 'tlsCert') cert = { file, leaf: certs[0] as X509Certificate }
        break
      }
      case 'tlsKey':
        try {
          key = { file, key: createPrivateKey(r.text) }
        } catch (err) {
          // Node's message names the format problem (or a passphrase the key needs), not the key.
          bad(`is not a usable PEM private key (${(err as Error).message})`)
        }
        break
      default:
        // The API tokens file's format belongs to the API; here it only has to be readable.
        break
    }
  }
  if (cert !== undefined && key !== undefined && !cert.leaf.checkPrivateKey(key.key)) {
    problems.push(
      `${key.file.label}: ${key.file.path} is not the key of the certificate in ${cert.file.path} ` +
        `(subject ${cert.leaf.subject.replaceAll('\n', ', ')})`,
    )
  }
  return problems
}
