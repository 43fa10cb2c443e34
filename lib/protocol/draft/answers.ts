/** The draft's error answers: RFC 9457 problem details carried by a TusError. */
import { TusError } from '../errors.js'
import { inconsistentLength as inconsistentProblem, mismatchingOffset as mismatchProblem, type Problem } from './problem.js'

/** A TusError answered with a problem document instead of a plain-text reason. */
export function problemError (problem: Problem, headers: Record<string, string> = {}): TusError {
  return new TusError(problem.status, problem.detail ?? problem.title ?? 'problem', headers, { contentType: problem.contentType, text: problem.body })
}

/** 409 for an append at the wrong offset: the problem, the offset to resume from, and `Upload-Complete: ?0`. */
export function offsetConflict (expected: number, provided: number): TusError {
  return problemError(mismatchProblem(expected, provided), { 'Upload-Offset': String(expected), 'Upload-Complete': '?0' })
}

export function inconsistentLength (detail: string): Problem {
  return inconsistentProblem(detail)
}
