/** HEAD: where an upload stands. Never cached. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TusContext } from './context.js'
import { serializeMetadata } from './headers.js'
import { expiresHeader, loadUpload } from './load.js'

export async function handleHead (ctx: TusContext, _request: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  const upload = await loadUpload(ctx, id)
  const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...expiresHeader(upload) }
  // A final upload has no offset to report until its parts are assembled.
  if (upload.concat !== 'final' || upload.completedAt !== null) headers['Upload-Offset'] = String(upload.offset)
  if (upload.length !== null) headers['Upload-Length'] = String(upload.length)
  else if (upload.concat !== 'final') headers['Upload-Defer-Length'] = '1'
  const metadata = serializeMetadata(upload.metadata)
  if (metadata !== '') headers['Upload-Metadata'] = metadata
  if (upload.concat === 'partial') headers['Upload-Concat'] = 'partial'
  if (upload.concat === 'final') headers['Upload-Concat'] = 'final;' + (upload.parts ?? []).map((part) => `${ctx.options.prefix}/${part}`).join(' ')
  reply.code(200).headers(headers).send()
}
