/**
 * GET: download a finished upload. Only media types that cannot run script
 * are served inline; everything else (HTML, SVG, XML, JavaScript, unknown)
 * is an attachment of type application/octet-stream, and nosniff is always on,
 * so an uploaded file can never execute in this server's origin.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UploadMetadata } from '../../types/index.js'
import type { TusContext } from './context.js'
import { TusError } from './errors.js'
import { loadUpload } from './load.js'

const INLINE_TYPES = new Set([
  'text/plain',
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp',
  'audio/mpeg', 'audio/ogg', 'audio/wav', 'audio/webm', 'audio/aac', 'audio/flac',
  'video/mp4', 'video/webm', 'video/ogg'
])

/**
 * The Content-Type an upload's bytes are served with: its declared type when
 * that cannot run script, else application/octet-stream (also the type a
 * finished object gets in object storage).
 */
export function servedType (metadata: UploadMetadata): { type: string; inline: boolean } {
  const declared = (metadata.filetype ?? metadata.type ?? '').split(';')[0]!.trim().toLowerCase()
  const inline = INLINE_TYPES.has(declared)
  return { type: inline ? declared : 'application/octet-stream', inline }
}

/** RFC 6266 filename: an ASCII fallback plus the UTF-8 form. */
function disposition (kind: 'inline' | 'attachment', filename: string | null | undefined): string {
  if (filename == null || filename === '') return kind
  // eslint-disable-next-line no-control-regex
  const clean = filename.replace(/[\u0000-\u001f\u007f/\\]/g, '_')
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/["%]/g, '_')
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(clean)}`
}

/** A single `bytes=` range, or undefined to serve everything (malformed or multi-range headers are ignored, as HTTP allows). */
function parseRange (header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match === null) return undefined
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return undefined
  let start: number
  let end: number
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0) return 'unsatisfiable'
    start = Math.max(size - suffix, 0)
    end = size - 1
  } else {
    start = Number(first)
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
    if (last !== '' && Number(last) < start) return undefined
  }
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable'
  return { start, end }
}

export async function handleDownload (ctx: TusContext, request: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  const upload = await loadUpload(ctx, id)
  if (upload.completedAt === null) throw new TusError(409, 'upload is not finished')
  const size = upload.offset
  // The row says finished but the bytes may have been taken away (an onComplete
  // that moved the file, a lost volume): say so instead of failing mid-stream.
  if (size > 0 && ((await ctx.store.size(id)) ?? -1) < size) throw new TusError(410, 'the upload is finished but its bytes are no longer in storage')

  const { type, inline } = servedType(upload.metadata)
  reply.headers({
    'Content-Type': type,
    'Content-Disposition': disposition(inline ? 'inline' : 'attachment', upload.metadata.filename ?? upload.metadata.name),
    'X-Content-Type-Options': 'nosniff',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-store'
  })

  const range = parseRange(request.headers.range, size)
  if (range === 'unsatisfiable') {
    throw new TusError(416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` })
  }
  if (range === undefined) {
    reply.code(200).header('Content-Length', String(size))
    return reply.send(size === 0 ? '' : ctx.store.createReadStream(id))
  }
  reply.code(206).headers({
    'Content-Range': `bytes ${range.start}-${range.end}/${size}`,
    'Content-Length': String(range.end - range.start + 1)
  })
  return reply.send(ctx.store.createReadStream(id, range))
}
