/** PATCH: append the body at Upload-Offset; creation-defer-length's late Upload-Length. */
import { performance } from 'node:perf_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { LockRequest } from '../../types/index.js'
import type { TusContext } from './context.js'
import { TusError } from './errors.js'
import { OFFSET_OCTET_STREAM, hasBody, mediaType, parseChecksum, parseSize, type ChecksumHeader } from './headers.js'
import { completeUpload } from './lifecycle.js'
import { draftPatchInput, reportProgress } from './draft/append.js'
import { inconsistentLength, offsetConflict } from './draft/answers.js'
import { expiresHeader, loadUpload } from './load.js'
import { writeBody } from './write.js'
import type { BodyActivity } from './checksum.js'

/** A writer that has received nothing for this long is presumed dead when another request wants its upload. */
export const SILENT_WRITER_MS = 2000
/** How long a request waits for a silent writer to let go. */
const TAKEOVER_WAIT_MS = 1000

/**
 * A client whose connection died without a FIN or RST (a dropped network, a
 * sleeping laptop) leaves a PATCH that holds the upload until the idle timeout.
 * When the same client resumes, its new request asks the holder to give way;
 * the holder agrees only if its body has been silent for SILENT_WRITER_MS, and
 * then ends its request, keeping the bytes it received (so the resume gets 409
 * with the new offset, or proceeds). A writer that is still receiving is not
 * disturbed: the newcomer gets 423 at once. With the database locker, a
 * holder on another instance is asked at its next lease renewal, so the
 * newcomer gets 423 and its retry finds the upload free.
 */
export function takeOverSilentWriter (request: FastifyRequest, activity?: BodyActivity): LockRequest {
  return {
    wait: TAKEOVER_WAIT_MS,
    // A shared lock that could not be renewed: stop writing (the bytes stored so far are kept).
    onLost: () => { request.raw.destroy() },
    // Without a body to watch (DELETE), the holder never gives way: it is brief.
    onReleaseRequested: activity === undefined
      ? undefined
      : () => {
          if (Date.now() - activity.last < SILENT_WRITER_MS) return false
          request.raw.destroy()
          return true
        }
  }
}

export async function handlePatch (ctx: TusContext, request: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  if (!ctx.events.listened('patch:start') && !ctx.events.listened('patch:end')) return patchUpload(ctx, request, reply, id)
  const started = performance.now()
  ctx.events.publish('patch:start', () => ({ id }))
  try {
    await patchUpload(ctx, request, reply, id)
  } finally {
    ctx.events.publish('patch:end', () => ({ id, durationMs: performance.now() - started }))
  }
}

/** The 423 of a request that found the upload locked (reported on 'lock:conflict'). */
export function lockConflict (ctx: TusContext, id: string): TusError {
  ctx.events.publish('lock:conflict', () => ({ id }))
  return new TusError(423, 'upload is being written by another request')
}

/** What a PATCH asks for, in either protocol. */
interface PatchInput {
  offset: number
  /** A length declared by this request (tus Upload-Length; the draft's Upload-Length or Upload-Complete: ?1). */
  newLength: number | undefined
  checksum: ChecksumHeader | undefined
}

function tusPatchInput (ctx: TusContext, request: FastifyRequest): PatchInput {
  const { headers } = request
  if (mediaType(headers) !== OFFSET_OCTET_STREAM) throw new TusError(415, `PATCH requires Content-Type: ${OFFSET_OCTET_STREAM}`)
  const offset = parseSize(headers, 'upload-offset')
  if (offset === undefined) throw new TusError(400, 'Upload-Offset is required')
  return { offset, newLength: parseSize(headers, 'upload-length'), checksum: parseChecksum(headers, ctx.options.checksumAlgorithms) }
}

async function patchUpload (ctx: TusContext, request: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  const { headers } = request
  const draft = request.tusDraft
  const { offset, newLength, checksum } = draft === undefined ? tusPatchInput(ctx, request) : draftPatchInput(request, draft)

  // One writer per upload: a second one is told at once, it does not queue;
  // but a writer whose client has gone silent gives way (see takeOverSilentWriter).
  const activity: BodyActivity = { last: Date.now(), received: 0 }
  const lock = await ctx.locker.tryAcquire(id, takeOverSilentWriter(request, activity))
  if (lock === null) throw lockConflict(ctx, id)
  let outcome
  // Replies go out only once the lock is released (a shared lock takes a
  // round trip), so a client's next request never finds its own lock held.
  let finishedAt: number | undefined
  try {
    let upload = await loadUpload(ctx, id)
    if (upload.concat === 'final') throw new TusError(403, 'a final upload cannot be patched')
    if (offset !== upload.offset) {
      if (draft !== undefined) throw offsetConflict(upload.offset, offset)
      throw new TusError(409, `Upload-Offset ${offset} does not match the upload's offset ${upload.offset}`, { 'Upload-Offset': String(upload.offset) })
    }

    // A length declared on this PATCH is only recorded if the PATCH itself is accepted.
    let declaresLength = false
    if (newLength !== undefined) {
      if (upload.length === null) {
        if (newLength < upload.offset) throw new TusError(400, 'Upload-Length is smaller than the bytes already stored')
        if (ctx.options.maxSize > 0 && newLength > ctx.options.maxSize) throw new TusError(413, `upload is larger than the maximum size of ${ctx.options.maxSize} bytes`)
        upload = { ...upload, length: newLength }
        declaresLength = true
      } else if (newLength !== upload.length) {
        if (draft !== undefined) throw inconsistentLength(`the upload's length is ${upload.length}; this request implies ${newLength}`)
        throw new TusError(400, 'Upload-Length cannot change once set')
      }
    }
    if (upload.completedAt !== null) {
      // Already finished: an empty PATCH at the end is harmless, any byte more is past the length.
      if (hasBody(headers)) throw new TusError(413, 'upload is already complete')
      finishedAt = upload.offset
    } else {
      const progress = draft === undefined ? undefined : reportProgress(ctx, reply, draft, upload.offset, activity)
      try {
        outcome = await writeBody(ctx, request, upload, checksum, lock, declaresLength, activity)
      } finally {
        progress?.()
      }
    }
  } finally {
    await lock.release()
  }
  // The draft says in every answer whether the upload is complete.
  const complete = (done: boolean): Record<string, string> => draft === undefined ? {} : { 'Upload-Complete': done ? '?1' : '?0' }
  if (outcome === undefined) {
    reply.code(204).headers({ 'Upload-Offset': String(finishedAt), ...complete(true) }).send()
    return
  }
  if (outcome.completed) await completeUpload(ctx, outcome.upload, request)
  reply.code(204).headers({ 'Upload-Offset': String(outcome.upload.offset), ...expiresHeader(outcome.upload), ...complete(outcome.completed) }).send()
}
