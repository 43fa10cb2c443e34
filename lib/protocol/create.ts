/**
 * POST: creation, creation-with-upload, creation-defer-length and the
 * concatenation extension's partial and final uploads.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { NewUpload, UploadRecord, WriteResult } from '../../types/index.js'
import type { TusContext } from './context.js'
import { TusError } from './errors.js'
import { finalLength, resolveParts } from './concat.js'
import {
  OFFSET_OCTET_STREAM, hasBody, isValidId, mediaType, parseChecksum, parseConcat, parseMetadata, parseSize, single, type ChecksumHeader
} from './headers.js'
import { assembleFinal, completeUpload } from './lifecycle.js'
import { expiresHeader } from './load.js'
import { bodyFailure, bodyLength, checksumMismatch, completesUpload, expiryFromNow, meteredRequestBody } from './write.js'
import { servedType } from './download.js'

/** 128 random bits, hex: unguessable and inside the id alphabet. */
export const newId = (): string => randomBytes(16).toString('hex')

export function uploadUrl (ctx: TusContext, request: FastifyRequest, id: string): string {
  // request.protocol and request.host honour X-Forwarded-* only when Fastify's trustProxy is on.
  // An HTTP/1.0 request may carry no Host: then the address it reached is used.
  let host = request.host
  if (host === '' || host === undefined) {
    const { localAddress = '127.0.0.1', localPort } = request.raw.socket
    host = `${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${localPort}`
  }
  return `${request.protocol}://${host}${ctx.options.prefix}/${id}`
}

/** Undo a creation whose URL never reached the client: nothing may stay behind. */
async function discard (ctx: TusContext, id: string): Promise<void> {
  await ctx.uploads.delete(id)
  await ctx.store.remove(id)
}

export async function handleCreate (ctx: TusContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { headers } = request
  const { maxSize, maxMetadataSize } = ctx.options

  // Everything is checked before anything is stored.
  const concat = parseConcat(headers)
  const declaredLength = parseSize(headers, 'upload-length')
  const defer = single(headers, 'upload-defer-length')
  if (defer !== undefined && defer.trim() !== '1') throw new TusError(400, 'Upload-Defer-Length must be 1')
  const metadata = parseMetadata(single(headers, 'upload-metadata'), maxMetadataSize)
  const withBody = hasBody(headers)
  if (withBody && mediaType(headers) !== OFFSET_OCTET_STREAM) throw new TusError(415, `a creation body must be sent as ${OFFSET_OCTET_STREAM}`)
  const checksum = withBody ? parseChecksum(headers, ctx.options.checksumAlgorithms) : undefined

  let length: number | null
  let parts: UploadRecord[] = []
  if (concat?.kind === 'final') {
    if (declaredLength !== undefined || defer !== undefined) throw new TusError(400, 'a final upload takes its length from its parts; send no Upload-Length')
    if (withBody) throw new TusError(403, 'a final upload cannot carry a body')
    parts = await resolveParts(ctx, concat.urls)
    length = finalLength(parts)
  } else {
    if (declaredLength !== undefined && defer !== undefined) throw new TusError(400, 'send either Upload-Length or Upload-Defer-Length, not both')
    if (declaredLength === undefined && defer === undefined) throw new TusError(400, 'Upload-Length or Upload-Defer-Length: 1 is required')
    length = declaredLength ?? null
  }
  if (maxSize > 0 && length !== null && length > maxSize) throw new TusError(413, `upload is larger than the maximum size of ${maxSize} bytes`)

  const info = { length, metadata, concat: concat?.kind ?? null, parts: concat?.kind === 'final' ? parts.map((p) => p.id) : null }
  const change = await ctx.hooks.runCreate({ request, upload: info })
  const id = change.id ?? newId()
  if (!isValidId(id)) throw new TusError(500, 'onCreate chose an id outside [A-Za-z0-9_-]{1,100}')
  // A generated id (128 random bits) cannot collide; one an onCreate handler chose can.
  if (change.id !== undefined && await ctx.uploads.get(id) !== undefined) throw new TusError(409, `upload ${id} already exists`)

  // An empty upload is finished the moment it exists.
  const complete = length === 0 && concat?.kind !== 'final'
  const draft: NewUpload = {
    id,
    length,
    metadata: change.metadata ?? metadata,
    concat: info.concat,
    parts: info.parts,
    // A final upload waiting for its parts does not expire on its own; it goes with them.
    expiresAt: concat?.kind === 'final' || complete ? null : expiryFromNow(ctx),
    complete
  }
  const chosenId = change.id !== undefined
  let upload = withBody ? await createWithBody(ctx, request, draft, checksum, chosenId) : await createEmpty(ctx, draft, chosenId)
  const created = upload
  ctx.events.publish('upload:created', () => ({ upload: created }))

  const location = uploadUrl(ctx, request, id)
  if (upload.concat === 'final') {
    try {
      upload = await assembleFinal(ctx, upload, request) ?? upload
    } catch (err) {
      if (upload.completedAt === null) await discard(ctx, id)
      throw err
    }
  } else if (upload.completedAt !== null) {
    await completeUpload(ctx, upload, request)
  }

  // The client went away before its answer (its socket is gone; note that the
  // request stream itself counts as destroyed once its body was read): no one
  // will ever know this URL.
  if (reply.raw.destroyed && upload.completedAt === null) {
    await discard(ctx, id)
    return
  }

  reply.code(201).headers({
    Location: location,
    ...(upload.concat === 'final' && upload.completedAt === null ? {} : { 'Upload-Offset': String(upload.offset) }),
    ...expiresHeader(upload)
  }).send()
}

/**
 * The store found bytes under the id already: an id an onCreate handler chose,
 * taken by a creation under way (its row not yet written, perhaps on another
 * instance) or by a stray file. Those bytes are not this request's to touch.
 */
function idTaken (id: string, err: unknown): unknown {
  return (err as NodeJS.ErrnoException | null)?.code === 'EEXIST' ? new TusError(409, `upload ${id} already exists`) : err
}

/** Bytes first, then the row: a crash in between leaves a stray file, never a row without bytes. */
export async function createEmpty (ctx: TusContext, draft: NewUpload, chosenId = false): Promise<UploadRecord> {
  try {
    await ctx.store.create(draft.id, { contentType: servedType(draft.metadata).type, chosenId })
  } catch (err) {
    throw idTaken(draft.id, err)
  }
  if (draft.complete === true) await finishOrDiscard(ctx, draft.id, 0)
  return await insertRow(ctx, draft)
}

/** An upload complete at creation: its bytes are finished before its row exists; if that fails, they go. */
async function finishOrDiscard (ctx: TusContext, id: string, length: number): Promise<void> {
  try {
    await ctx.store.finish(id, length)
  } catch (err) {
    await ctx.store.remove(id)
    throw err
  }
}

/** The row for bytes this request just created; if it cannot be written, the bytes go too. */
async function insertRow (ctx: TusContext, upload: NewUpload): Promise<UploadRecord> {
  try {
    return await ctx.uploads.insert(upload)
  } catch (err) {
    await ctx.store.remove(upload.id)
    throw err
  }
}

/**
 * creation-with-upload in one step: the body streams into the new file, and
 * only then is the row inserted, at the offset reached (finished when that is
 * the whole upload). Nobody can know the URL before the answer, so there is
 * nothing to lock and no checkpoint to make; a body that fails (too long, wrong
 * checksum, cut off, storage error) leaves nothing behind, since its URL never
 * reached the client.
 */
async function createWithBody (ctx: TusContext, request: FastifyRequest, draft: NewUpload, checksum: ChecksumHeader | undefined, chosenId: boolean): Promise<UploadRecord> {
  const body = meteredRequestBody(ctx, request, { offset: 0, length: draft.length }, checksum)
  // If this throws, the file was never ours (a creating write fails on an existing one): leave it.
  let result: WriteResult
  try {
    const length = bodyLength(request)
    result = await ctx.drain.during(body, async () => ctx.store.write(draft.id, 0, body.source, {
      flush: ctx.options.fsync, create: true, contentType: servedType(draft.metadata).type, chosenId, length, completes: completesUpload(draft, 0, length, checksum)
    }))
  } catch (err) {
    throw idTaken(draft.id, err)
  }
  const failure = result.error ?? (body.checksumMatches() ? undefined : checksumMismatch(checksum!))
  if (failure !== undefined) {
    await ctx.store.remove(draft.id)
    throw bodyFailure(ctx, draft.id, failure, 'storage write failed')
  }
  const complete = draft.length !== null && result.bytesWritten === draft.length
  if (complete) await finishOrDiscard(ctx, draft.id, result.bytesWritten)
  const upload = await insertRow(ctx, { ...draft, offset: result.bytesWritten, complete, expiresAt: complete ? null : expiryFromNow(ctx) })
  if (result.bytesWritten > 0) ctx.events.publish('upload:received', () => ({ id: upload.id, bytes: result.bytesWritten }))
  return upload
}
