/**
 * The expiration extension's cleanup: expired unfinished uploads lose their row
 * and bytes. An upload being written right now is skipped (its lock is held)
 * and looked at again on the next run.
 */
import type { TusContext } from './protocol/context.js'
import { isExpired, terminateUpload } from './protocol/lifecycle.js'

const BATCH = 100

export async function cleanupExpired (ctx: TusContext): Promise<number> {
  let removed = 0
  const skipped = new Set<string>()
  for (;;) {
    const batch = (await ctx.uploads.listExpired(new Date(), BATCH + skipped.size)).filter((u) => !skipped.has(u.id))
    if (batch.length === 0) return removed
    for (const candidate of batch) {
      const lock = await ctx.locker.tryAcquire(candidate.id)
      if (lock === null) { skipped.add(candidate.id); continue }
      try {
        // Read again under the lock: a write may have extended it meanwhile.
        const upload = await ctx.uploads.get(candidate.id)
        if (upload !== undefined && isExpired(upload) && await terminateUpload(ctx, upload, 'expired', null)) removed++
        else skipped.add(candidate.id)
      } catch (err) {
        skipped.add(candidate.id)
        ctx.log.error({ err, upload: candidate.id }, 'fastify-tus: removing an expired upload failed')
      } finally {
        await lock.release()
      }
    }
  }
}

/** Runs the cleanup every `interval` ms; the timer never keeps the process alive. */
export function scheduleCleanup (ctx: TusContext, interval: number): () => void {
  if (interval <= 0) return () => {}
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    cleanupExpired(ctx)
      .then((n) => { if (n > 0) ctx.log.info({ removed: n }, 'fastify-tus: removed expired uploads') })
      .catch((err) => ctx.log.error({ err }, 'fastify-tus: expiry cleanup failed'))
      .finally(() => { running = false })
  }, interval)
  timer.unref()
  return () => clearInterval(timer)
}
