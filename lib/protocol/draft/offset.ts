/** Offset retrieval in the IETF draft: HEAD on the upload, never cached. */
import type { FastifyReply } from 'fastify'
import type { TusContext } from '../context.js'
import { loadUpload } from '../load.js'
import { uploadLimit, type DraftRequest } from './select.js'

export async function handleDraftHead (ctx: TusContext, reply: FastifyReply, id: string, draft: DraftRequest): Promise<void> {
  const upload = await loadUpload(ctx, id)
  reply.code(204).headers({
    'Upload-Offset': String(upload.offset),
    'Upload-Complete': upload.completedAt === null ? '?0' : '?1',
    ...(upload.length === null ? {} : { 'Upload-Length': String(upload.length) }),
    'Upload-Limit': uploadLimit(ctx, draft.version),
    'Cache-Control': 'no-store'
  }).send()
}
