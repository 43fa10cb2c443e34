/** Finding the upload a request names, with the 404 / 410 answers every route shares. */
import type { UploadRecord } from '../../types/index.js'
import type { TusContext } from './context.js'
import { gone, notFound } from './errors.js'
import { isValidId } from './headers.js'
import { isExpired } from './lifecycle.js'

export async function loadUpload (ctx: TusContext, id: string, options: { allowExpired?: boolean } = {}): Promise<UploadRecord> {
  if (!isValidId(id)) throw notFound()
  const upload = await ctx.uploads.get(id)
  if (upload === undefined) throw notFound()
  if (options.allowExpired !== true && isExpired(upload)) throw gone()
  return upload
}

/** Upload-Expires as an HTTP-date, only while the upload is unfinished. */
export function expiresHeader (upload: UploadRecord): Record<string, string> {
  return upload.completedAt === null && upload.expiresAt !== null ? { 'Upload-Expires': upload.expiresAt.toUTCString() } : {}
}
