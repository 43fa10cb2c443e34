/** What the SIGKILL trials share: a seeded random source, and a PATCH stream killed at a chosen moment. */
import type { ChildProcess } from 'node:child_process'
import { OCTET, TUS, send } from './http.js'
import { sleep, waitFor } from './tus.js'

/** mulberry32: a fixed seed, so every run kills at the same moments. */
export function rng (seed: number): () => number {
  return () => {
    seed |= 0; seed = seed + 0x6D2B79F5 | 0
    let x = Math.imul(seed ^ seed >>> 15, 1 | seed)
    x = x + Math.imul(x ^ x >>> 7, 61 | x) ^ x
    return ((x ^ x >>> 14) >>> 0) / 4294967296
  }
}

export const exited = async (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))

/**
 * Streams `source` as one PATCH at offset 0, a `piece` every `pause` ms, and kills
 * `child` (the server) with SIGKILL `killAt` ms after the start, or after `after`
 * (while the body is still streaming) resolved. Answers how many bytes were written.
 */
export async function patchThenKill (url: string, source: Buffer, piece: number, pause: number, killAt: number, child: ChildProcess, after?: () => Promise<void>): Promise<number> {
  let sent = 0
  const patching = send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(source.length) },
    stream: (req) => {
      req.on('error', () => {})
      const next = (): void => {
        if (sent >= source.length || req.destroyed) { req.end(); return }
        req.write(source.subarray(sent, sent + piece))
        sent += piece
        setTimeout(next, pause)
      }
      next()
    }
  }).catch(() => undefined)
  // A moment that never came fails the trial, after the kill (the server must not outlive it).
  const missed = await after?.().then(() => undefined, (error: unknown) => error ?? new Error('after() failed'))
  if (missed === undefined) await sleep(killAt)
  child.kill('SIGKILL')
  await exited(child)
  await patching
  if (missed !== undefined) throw missed
  return sent
}

/** Resolves once a HEAD of `url` answers an Upload-Offset of at least `offset`; fails after `ms`. */
export async function offsetReached (url: string, offset: number, ms = 10_000): Promise<void> {
  await waitFor(async () => {
    const res = await send('HEAD', url, { headers: TUS }).catch(() => undefined)
    return res !== undefined && Number(res.headers['upload-offset']) >= offset
  }, ms, `${url} to reach offset ${offset}`)
}
