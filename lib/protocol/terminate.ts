/** DELETE (termination): the row and the bytes go, onTerminate is told. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TusContext } from './context.js'
import { notFound } from './errors.js'
import { terminateUpload } from './lifecycle.js'
import { loadUpload } from './load.js'
import { lockConflict, takeOverSilentWriter } from './patch.js'

export async function handleTerminate (ctx: TusContext, request: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  // DELETE may take over from a writer whose client went silent, like a PATCH.
  const lock = await ctx.locker.tryAcquire(id, takeOverSilentWriter(request))
  if (lock === null) throw lockConflict(ctx, id)
  try {
    const upload = await loadUpload(ctx, id, { allowExpired: true })
    // A handler may refuse (a TusError is the answer); nothing is removed before.
    await ctx.hooks.runBeforeTerminate({ request, upload })
    if (!await terminateUpload(ctx, upload, 'client', request)) throw notFound()
  } finally {
    await lock.release()
  }
  reply.code(204).send()
}
