/**
 * What is valid in a node's settings but worth a warning at start: choices that leak a secret or
 * do nothing. Pure; the node command logs each line at level warn.
 */
import { redactUrls } from './redact.js'
import type { NodeSettings, Origin, SettingName } from './settings.js'

/** True when `hostname` (as URL gives it: IPv6 in brackets) names this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '')
  return h === 'localhost' || h.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(h) || h === '[::1]' || h === '::1'
}

/** The warnings for `settings`, one message each. */
export function settingsWarnings(s: NodeSettings, origins: Readonly<Partial<Record<SettingName, Origin>>>): string[] {
  const out: string[] = []
  if (origins.token === 'flag') {
    out.push(
      'the token was given with --token, which other local users can read in the process list; ' +
        'prefer SLEDLOG_TOKEN or the config file',
    )
  }
  if (s.token !== undefined) {
    const plain = s.peers.filter((p) => {
      const u = new URL(p)
      return u.protocol === 'ws:' && !isLoopbackHost(u.hostname)
    })
    if (plain.length > 0) {
      out.push(
        `peer${plain.length === 1 ? '' : 's'} ${plain.map(redactUrls).join(', ')} ` +
          'dialed over plain ws://: the token proof (open to offline guessing) and every replicated entry ' +
          'cross the network unencrypted; use wss:// for peers off this machine',
      )
    }
  }
  if ((s.peerCa !== undefined || s.peerPins !== undefined) && !s.peers.some((p) => p.startsWith('wss:'))) {
    out.push('--peer-ca and --peer-pin only apply to wss:// peers, and no peer is wss://: they have no effect')
  }
  return out
}
