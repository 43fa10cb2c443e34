/**
 * Start-up reconciliation of the table with the stored bytes, for what a crash
 * can leave behind. The write order (bytes, fsync, then the offset) means the
 * stored offset can only be behind the bytes, so the rules are:
 *
 * - an unfinished upload whose file is longer than its offset: the tail was
 *   never confirmed (its checksum may not have been checked), so it is trimmed;
 * - shorter than its offset (only possible with fsync off and a power loss):
 *   the offset comes back to the bytes that exist, and the client re-sends;
 * - no file at all: an empty one is made and the offset goes back to 0;
 * - a file with no row: a creation that died between its two steps; removed
 *   once it is older than `orphanGrace`, since a creation may be under way.
 *
 * Uploads being written right now (lock held) are left alone; the others are
 * looked at again under their lock, since with several instances on one
 * database another one may be serving them.
 */
import type { UploadRecord } from '../types/index.js'
import type { TusContext } from './protocol/context.js'
import { isValidId } from './protocol/headers.js'

export interface RecoveryReport {
  trimmed: number
  rewound: number
  recreated: number
  orphansRemoved: number
  completeMismatches: number
}

const PAGE = 500

export async function reconcile (ctx: TusContext, orphanGrace = 60_000): Promise<RecoveryReport> {
  const report: RecoveryReport = { trimmed: 0, rewound: 0, recreated: 0, orphansRemoved: 0, completeMismatches: 0 }
  const known = new Set<string>()
  for (let page = 0; ; page++) {
    const uploads = await ctx.uploads.list({ status: 'all', limit: PAGE, offset: page * PAGE })
    for (const listed of uploads) {
      known.add(listed.id)
      try {
        await reconcileOne(ctx, listed, report)
      } catch (err) {
        // One upload the store cannot account for must not keep the server from starting.
        ctx.log.error({ err, upload: listed.id }, 'fastify-tus: reconciling an upload with its stored bytes failed; left as it is')
      }
    }
    if (uploads.length < PAGE) break
  }

  const cutoff = Date.now() - orphanGrace
  for (const file of await ctx.store.list()) {
    if (known.has(file.id) || !isValidId(file.id) || file.modifiedAt.getTime() > cutoff) continue
    if (await ctx.uploads.get(file.id) !== undefined) continue // created since the scan
    await ctx.store.remove(file.id)
    report.orphansRemoved++
    ctx.log.warn({ upload: file.id }, 'fastify-tus: removed bytes that have no upload row')
  }
  return report
}

/** One row against its stored bytes (see the rules above). */
async function reconcileOne (ctx: TusContext, listed: UploadRecord, report: RecoveryReport): Promise<void> {
  let upload = listed
  // Object storage: one request per finished upload on every start is not worth it.
  if (upload.completedAt !== null && ctx.store.remote === true) return
  let size = await ctx.store.size(upload.id)
  if (upload.completedAt !== null) {
    if (size !== upload.offset && upload.concat !== 'partial') {
      report.completeMismatches++
      ctx.log.error({ upload: upload.id, size, offset: upload.offset }, 'fastify-tus: a finished upload does not have its bytes')
    }
    return
  }
  if (size === upload.offset) return
  const lock = await ctx.locker.tryAcquire(upload.id)
  if (lock === null) return
  try {
    // Look again under the lock: another instance may have written (or
    // removed) it between the scan and now.
    const current = await ctx.uploads.get(upload.id)
    if (current === undefined || current.completedAt !== null) return
    upload = current
    size = await ctx.store.size(upload.id)
    if (size === upload.offset) return
    if (size === null) {
      await ctx.store.create(upload.id)
      if (upload.offset > 0) await ctx.uploads.advanceOffset(upload.id, upload.offset, 0, { expiresAt: upload.expiresAt, complete: false })
      report.recreated++
      ctx.log.warn({ upload: upload.id, offset: upload.offset }, 'fastify-tus: bytes of an upload were missing; it restarts at 0')
    } else if (size > upload.offset) {
      await ctx.store.truncate(upload.id, upload.offset)
      report.trimmed++
      ctx.log.info({ upload: upload.id, size, offset: upload.offset }, 'fastify-tus: trimmed unconfirmed bytes after a crash')
    } else {
      await ctx.uploads.advanceOffset(upload.id, upload.offset, size, { expiresAt: upload.expiresAt, complete: false })
      report.rewound++
      ctx.log.warn({ upload: upload.id, size, offset: upload.offset }, 'fastify-tus: offset was ahead of the bytes; moved back')
    }
  } finally {
    await lock.release()
  }
}
