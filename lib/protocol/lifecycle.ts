/**
 * What happens when an upload finishes or goes away: onComplete / onTerminate,
 * and the concatenation-unfinished follow-up (a final upload waiting for its
 * partial uploads is assembled when the last of them finishes).
 */
import type { FastifyRequest } from 'fastify'
import type { TerminationReason, UploadRecord } from '../../types/index.js'
import type { TusContext } from './context.js'
import { TusError } from './errors.js'
import { servedType } from './download.js'

/** Runs after the row says complete. Partial uploads are not files: they only wake their finals. */
export async function completeUpload (ctx: TusContext, upload: UploadRecord, request: FastifyRequest | null): Promise<void> {
  ctx.events.publish('upload:completed', () => ({ upload }))
  if (upload.concat === 'partial') {
    for (const final of await ctx.uploads.finalsWaitingFor(upload.id)) {
      try {
        await assembleFinal(ctx, final, request)
      } catch (err) {
        ctx.log.error({ err, upload: final.id }, 'fastify-tus: assembling a final upload failed')
      }
    }
    return
  }
  // No handler, nothing owed: the completing update recorded the delivery as done
  // (see owesCompleteHook in store/meta/uploads.ts). Handlers are never removed,
  // so a row written while one existed is still delivered below.
  if (!ctx.hooks.has('onComplete')) return
  if (ctx.options.completeDelivery === 'wait') return ctx.completion.deliver(upload, request)
  // Answer first; the delivery is on the row and retried like any other.
  ctx.completion.deliver(upload, request).catch((err) => ctx.log.warn({ err, upload: upload.id }, 'fastify-tus: onComplete rejected the upload after the reply'))
}

/**
 * Joins a final upload's parts when all of them are finished; does nothing
 * when one is still unfinished. Answers the completed record, or null.
 */
export async function assembleFinal (ctx: TusContext, final: UploadRecord, request: FastifyRequest | null): Promise<UploadRecord | null> {
  const parts: UploadRecord[] = []
  for (const id of final.parts ?? []) {
    const part = await ctx.uploads.get(id)
    if (part === undefined) throw new TusError(400, `partial upload ${id} no longer exists`)
    if (part.completedAt === null) return null
    parts.push(part)
  }
  const lock = await ctx.locker.tryAcquire(final.id)
  if (lock === null) return null // someone else is assembling it
  try {
    const current = await ctx.uploads.get(final.id)
    if (current === undefined || current.completedAt !== null) return null
    const length = parts.reduce((sum, part) => sum + part.offset, 0)
    // A lease that lapsed (this process was frozen) may have passed to another instance, which assembles it.
    if (!lock.held()) return null
    await ctx.store.concatenate(final.id, parts.map((p) => p.id), { flush: ctx.options.fsync, contentType: servedType(final.metadata).type })
    if (!await ctx.uploads.advanceOffset(final.id, 0, length, { expiresAt: null, complete: true, length })) return null
    const done = await ctx.uploads.get(final.id)
    if (done === undefined) return null
    await completeUpload(ctx, done, request)
    return done
  } finally {
    await lock.release()
  }
}

/**
 * Removes the row, then the bytes, then tells onTerminate. The caller holds the
 * upload's lock. Final uploads still waiting for a removed partial go too: they
 * could never be assembled.
 */
export async function terminateUpload (ctx: TusContext, upload: UploadRecord, reason: TerminationReason, request: FastifyRequest | null): Promise<boolean> {
  if (!await ctx.uploads.delete(upload.id)) return false
  await ctx.store.remove(upload.id)
  ctx.events.publish('upload:terminated', () => ({ upload, reason }))
  // The upload is gone whatever a handler does: a throwing onTerminate is
  // logged, and the removal (and its answer, and the finals below) goes on.
  try {
    await ctx.hooks.runTerminate({ request, upload, reason })
  } catch (err) {
    ctx.log.error({ err, upload: upload.id }, 'fastify-tus: an onTerminate handler failed')
  }
  if (upload.concat === 'partial') {
    for (const final of await ctx.uploads.finalsWaitingFor(upload.id)) {
      const lock = await ctx.locker.tryAcquire(final.id)
      if (lock === null) continue
      try {
        await terminateUpload(ctx, final, reason, request)
      } finally {
        await lock.release()
      }
    }
  }
  return true
}

/** Expired and not finished: such an upload answers 410 until the cleanup removes it. */
export const isExpired = (upload: UploadRecord, now = Date.now()): boolean =>
  upload.completedAt === null && upload.expiresAt !== null && upload.expiresAt.getTime() <= now
