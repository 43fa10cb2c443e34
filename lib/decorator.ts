/** `app.tus`: uploads as seen from the host application. */
import type { Readable } from 'node:stream'
import type { TusDecorator } from '../types/index.js'
import type { TusContext } from './protocol/context.js'
import { notFound } from './protocol/errors.js'
import { isValidId } from './protocol/headers.js'
import { terminateUpload } from './protocol/lifecycle.js'
import { cleanupExpired } from './expiry.js'

export function createDecorator (ctx: TusContext): TusDecorator {
  const find = async (id: string) => isValidId(id) ? await ctx.uploads.get(id) : undefined
  return {
    prefix: ctx.options.prefix,
    get draining () { return ctx.drain.draining },
    addHook: (name, handler) => ctx.hooks.add(name, handler),
    get: find,
    list: async (options) => ctx.uploads.list(options),
    async createReadStream (id, range): Promise<Readable> {
      if (await find(id) === undefined) throw notFound()
      return ctx.store.createReadStream(id, range)
    },
    async delete (id) {
      const upload = await find(id)
      if (upload === undefined) return false
      const lock = await ctx.locker.tryAcquire(id)
      if (lock === null) return false
      try {
        return await terminateUpload(ctx, upload, 'server', null)
      } finally {
        await lock.release()
      }
    },
    cleanupExpired: async () => cleanupExpired(ctx),
    runDueCompleteHooks: async () => ctx.completion.sweep()
  }
}
