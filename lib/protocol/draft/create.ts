/**
 * Upload creation in the IETF draft: a POST with `Upload-Complete` and a
 * representation of any media type. Its `Content-Type` and its
 * `Content-Disposition` filename become the upload's `filetype` and `filename`
 * metadata, so hooks, downloads and `app.tus.get` see the same record as for a
 * tus upload. The row exists before the first byte is read, so the
 * `104 (Upload Resumption Supported)` interim response can tell the client the
 * upload's URL at once, and a body cut off keeps what was stored (the client
 * knows where to resume), unlike tus creation-with-upload.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UploadMetadata } from '../../../types/index.js'
import type { TusContext } from '../context.js'
import { TusError } from '../errors.js'
import { hasBody, isValidId, mediaType, parseMetadata, single } from '../headers.js'
import { completeUpload } from '../lifecycle.js'
import { bodyLength, expiryFromNow, writeBody } from '../write.js'
import { createEmpty, newId, uploadUrl } from '../create.js'
import { lockConflict, takeOverSilentWriter } from '../patch.js'
import type { BodyActivity } from '../checksum.js'
import { parseNonNegative } from './fields.js'
import { inconsistentLength } from './answers.js'
import { sendInterim } from './interim.js'
import { PARTIAL_UPLOAD, uploadLimit, type DraftRequest } from './select.js'

/** `filename` from a Content-Disposition (`filename*=UTF-8''…` preferred), or undefined. */
function dispositionFilename (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const extended = /(?:^|;)\s*filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header)
  if (extended !== null) {
    try { return decodeURIComponent(extended[1]!.trim()) } catch { /* malformed: try the plain one */ }
  }
  const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header)
  if (plain === null) return undefined
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]
}

/**
 * The representation's own headers as the upload's metadata: `filetype` from
 * Content-Type, `filename` from Content-Disposition. A tus Upload-Metadata (which
 * tus-js-client sends in its draft modes too) is taken as well; the
 * representation's headers win.
 */
function metadataOf (ctx: TusContext, request: FastifyRequest): UploadMetadata {
  const metadata = parseMetadata(single(request.headers, 'upload-metadata'), ctx.options.maxMetadataSize)
  const type = request.headers['content-type']
  if (typeof type === 'string' && type.trim() !== '' && mediaType(request.headers) !== PARTIAL_UPLOAD) metadata.filetype = type.trim()
  const filename = dispositionFilename(single(request.headers, 'content-disposition'))
  if (filename !== undefined && filename !== '') metadata.filename = filename
  return metadata
}

/**
 * The representation's length, if known: `Upload-Length`, or the content's length
 * when `Upload-Complete: ?1` says the content is all of it. Both given must agree.
 */
export function draftLength (request: FastifyRequest, draft: DraftRequest, offset: number): number | undefined {
  const declared = parseNonNegative(request.headers['upload-length'])
  if (draft.complete !== true) return declared
  const content = bodyLength(request)
  if (content === undefined) {
    if (declared === undefined) throw new TusError(400, 'Upload-Complete: ?1 with a chunked body needs Upload-Length')
    return declared
  }
  if (declared !== undefined && declared !== offset + content) throw inconsistentLength(`Upload-Length ${declared} disagrees with the ${offset + content} bytes Upload-Complete: ?1 implies`)
  return offset + content
}

export async function handleDraftCreate (ctx: TusContext, request: FastifyRequest, reply: FastifyReply, draft: DraftRequest): Promise<void> {
  const { version } = draft
  const length = draftLength(request, draft, 0)
  const { maxSize } = ctx.options
  if (maxSize > 0 && length !== undefined && length > maxSize) {
    throw new TusError(413, `upload is larger than the maximum size of ${maxSize} bytes`, { 'Upload-Limit': uploadLimit(ctx, version) })
  }
  const metadata = metadataOf(ctx, request)
  const change = await ctx.hooks.runCreate({ request, upload: { length: length ?? null, metadata, concat: null, parts: null } })
  const id = change.id ?? newId()
  if (!isValidId(id)) throw new TusError(500, 'onCreate chose an id outside [A-Za-z0-9_-]{1,100}')
  if (change.id !== undefined && await ctx.uploads.get(id) !== undefined) throw new TusError(409, `upload ${id} already exists`)

  const complete = length === 0
  let upload = await createEmpty(ctx, {
    id, length: length ?? null, metadata: change.metadata ?? metadata, concat: null, parts: null, expiresAt: complete ? null : expiryFromNow(ctx), complete
  }, change.id !== undefined)
  const created = upload
  ctx.events.publish('upload:created', () => ({ upload: created }))
  const location = uploadUrl(ctx, request, id)
  // The URL before the first byte: a client cut off now can still resume.
  if (ctx.options.draftInterimResponses) sendInterim(reply.raw, 104, { Location: location, 'Upload-Draft-Interop-Version': String(version), 'Upload-Limit': uploadLimit(ctx, version) })

  if (hasBody(request.headers) && !complete) {
    const activity: BodyActivity = { last: Date.now(), received: 0 }
    const lock = await ctx.locker.tryAcquire(id, takeOverSilentWriter(request, activity))
    if (lock === null) throw lockConflict(ctx, id)
    let outcome
    try {
      outcome = await writeBody(ctx, request, upload, undefined, lock, false, activity)
    } finally {
      await lock.release()
    }
    upload = outcome.upload
    if (outcome.completed) await completeUpload(ctx, upload, request)
  } else if (complete) {
    await completeUpload(ctx, upload, request)
  }
  const done = upload.completedAt !== null
  reply.code(201).headers({
    Location: location,
    'Upload-Complete': done ? '?1' : '?0',
    'Upload-Offset': String(upload.offset),
    ...(done ? {} : { 'Upload-Limit': uploadLimit(ctx, version) })
  }).send()
}
