/** The draft's error answers: RFC 9457 problem details carried by a TusError. */
import { TusError } from '../errors.js'
import { inconsistentLength as inconsistentProblem, mismatchingOffset, type Problem } from './problem.js'

/** A TusError answered with a problem document instead of a plain-text reason (`reason` is what the log says). */
export function problemError (problem: Problem, reason: string, headers: Record<string, string> = {}): TusError {
  return new TusError(problem.status, reason, headers, { contentType: problem.contentType, text: problem.body })
}

/** 409 for an append at the wrong offset: the problem, the offset to resume from, and `Upload-Complete: ?0`. */
export function offsetConflict (expected: number, provided: number): TusError {
  return problemError(mismatchingOffset(expected, provided), `Upload-Offset ${provided} does not match the upload's offset ${expected}`,
    { 'Upload-Offset': String(expected), 'Upload-Complete': '?0' })
}

/** 400 for lengths that disagree. */
export function inconsistentLength (detail: string): TusError {
  return problemError(inconsistentProblem(detail), detail)
}

export type { Problem }
