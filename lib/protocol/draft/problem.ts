/** RFC 9457 problem details for the draft's two problem types. */
export interface Problem { status: number; contentType: string; title: string; detail: string; body: string }

const BASE = 'https://iana.org/assignments/http-problem-types#'

function problem (status: number, type: string, title: string, detail: string, members: Record<string, unknown> = {}): Problem {
  return { status, contentType: 'application/problem+json', title, detail, body: JSON.stringify({ type: BASE + type, title, detail, ...members }) }
}

export const mismatchingOffset = (expected: number, provided: number): Problem =>
  problem(409, 'mismatching-upload-offset', 'Mismatching Upload Offset', `Upload-Offset ${provided} does not match the upload's offset ${expected}`, { 'expected-offset': expected, 'provided-offset': provided })

export const inconsistentLength = (detail: string): Problem =>
  problem(400, 'inconsistent-upload-length', 'Inconsistent Upload Length Values', detail)
