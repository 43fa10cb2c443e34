/**
 * The draft's header fields are RFC 9651 structured fields. Only what the draft
 * uses is parsed, strictly: a value that does not parse is treated as absent,
 * as the draft says.
 */
import type { IncomingHttpHeaders } from 'node:http'

const ITEM_INTEGER = /^[ ]*(-?\d{1,15})(?:;[a-z*][a-z0-9_.*-]*(?:=[^;]*)?)*[ ]*$/
const ITEM_BOOLEAN = /^[ ]*\?([01])(?:;[a-z*][a-z0-9_.*-]*(?:=[^;]*)?)*[ ]*$/

const one = (value: string | string[] | undefined): string | undefined => Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value

/** A non-negative sf-integer (parameters allowed and ignored), or undefined. */
export function parseSfInteger (value: string | string[] | undefined): number | undefined {
  const raw = one(value)
  if (raw === undefined) return undefined
  const match = ITEM_INTEGER.exec(raw)
  if (match === null) return undefined
  const n = Number(match[1])
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/** An sf-boolean (`?1` / `?0`), or undefined. */
export function parseSfBoolean (value: string | string[] | undefined): boolean | undefined {
  const raw = one(value)
  if (raw === undefined) return undefined
  const match = ITEM_BOOLEAN.exec(raw)
  return match === null ? undefined : match[1] === '1'
}

/** `Upload-Draft-Interop-Version`, or undefined. */
export function parseInteropVersion (headers: IncomingHttpHeaders): number | undefined {
  return parseSfInteger(headers['upload-draft-interop-version'])
}

export interface UploadLimits { maxSize?: number; minSize?: number; maxAppendSize?: number; minAppendSize?: number; maxAge?: number; expires?: number }

/** `Upload-Limit` as an sf-dictionary; `min-size=0` when there is no limit (never an empty field). */
export function serializeUploadLimit (limits: UploadLimits): string {
  const members: Array<[string, number | undefined]> = [
    ['max-size', limits.maxSize], ['min-size', limits.minSize], ['max-append-size', limits.maxAppendSize],
    ['min-append-size', limits.minAppendSize], ['max-age', limits.maxAge], ['expires', limits.expires]
  ]
  const present = members.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)
  return present.length === 0 ? 'min-size=0' : present.join(', ')
}
