/**
 * RFC 9457 problem details for the resumable-upload draft. The draft registers
 * two problem types (section "Problem Types" of draft-ietf-httpbis-resumable-upload;
 * `completed-upload` existed in -04 to -11 and was removed):
 *
 *   #mismatching-upload-offset     409, members expected-offset and provided-offset
 *   #inconsistent-upload-length    400, no extension members
 *
 * Using them is a "can", not a MUST; the headers that go with them (e.g.
 * `Upload-Offset` and `Upload-Complete: ?0` on a 409) are the caller's job.
 */

export const PROBLEM_JSON = 'application/problem+json'

const TYPE_BASE = 'https://iana.org/assignments/http-problem-types'
export const MISMATCHING_UPLOAD_OFFSET = `${TYPE_BASE}#mismatching-upload-offset`
export const INCONSISTENT_UPLOAD_LENGTH = `${TYPE_BASE}#inconsistent-upload-length`

/** A problem response, ready to send: status, media type and the serialised JSON body. */
export interface Problem {
  status: number
  contentType: typeof PROBLEM_JSON
  body: string
}

function problem (status: number, members: Record<string, string | number>): Problem {
  return { status, contentType: PROBLEM_JSON, body: JSON.stringify({ ...members, status }) }
}

const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ').trim()

/**
 * 409 for an append whose `Upload-Offset` is not the upload's offset.
 * `expected` is the server's offset, `provided` the request's.
 */
export function mismatchingOffset (expected: number, provided: number): Problem {
  return problem(409, {
    type: MISMATCHING_UPLOAD_OFFSET,
    title: 'Mismatching Upload Offset',
    detail: `The upload is at offset ${expected}, but the request's Upload-Offset is ${provided}.`,
    'expected-offset': expected,
    'provided-offset': provided
  })
}

/**
 * 400 when the indicated lengths disagree: `Upload-Length` against
 * `Upload-Complete: ?1` plus the content length, against the length recorded
 * for the upload, or content past a known length. `detail` says which (one
 * line; line breaks are folded).
 */
export function inconsistentLength (detail = 'The request indicates an upload length that differs from the length already known for this upload.'): Problem {
  return problem(400, {
    type: INCONSISTENT_UPLOAD_LENGTH,
    title: 'Inconsistent Upload Length Values',
    detail: oneLine(detail)
  })
}
