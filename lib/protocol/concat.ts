/** The concatenation extension: turning `Upload-Concat: final;<urls>` into partial uploads. */
import type { UploadRecord } from '../../types/index.js'
import type { TusContext } from './context.js'
import { TusError } from './errors.js'
import { isValidId } from './headers.js'
import { isExpired } from './lifecycle.js'

/** Accepts absolute URLs or paths, as long as they point into this endpoint. */
export async function resolveParts (ctx: TusContext, urls: string[]): Promise<UploadRecord[]> {
  const parts: UploadRecord[] = []
  for (const url of urls) {
    let path: string
    try {
      path = new URL(url, 'http://placeholder').pathname
    } catch {
      throw new TusError(400, 'Upload-Concat holds a malformed URL')
    }
    const id = path.startsWith(ctx.options.prefix + '/') ? path.slice(ctx.options.prefix.length + 1) : ''
    if (!isValidId(id)) throw new TusError(400, 'Upload-Concat names an upload outside this endpoint')
    const part = await ctx.uploads.get(id)
    if (part === undefined || isExpired(part)) throw new TusError(400, `partial upload ${id} does not exist`)
    if (part.concat !== 'partial') throw new TusError(400, `upload ${id} is not a partial upload`)
    parts.push(part)
  }
  return parts
}

/** The final length when every part's length is known, else null (it is learnt on assembly). */
export function finalLength (parts: UploadRecord[]): number | null {
  let total = 0
  for (const part of parts) {
    if (part.length === null) return null
    total += part.length
  }
  return total
}
