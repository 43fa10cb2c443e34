/**
 * Progress of one upload (or of all parts of a parallel one): acknowledged
 * bytes per part, and a speed measured over a sliding window so it follows
 * the network rather than averaging a whole hour.
 */
import type { TusProgress } from './options.js'

/** The speed is measured over roughly this many ms. */
const WINDOW_MS = 5000
/** Bounds the sample list whatever the chunk rate. */
const MAX_SAMPLES = 64

interface Sample { time: number; bytes: number }

export class ProgressTracker {
  #total: number | null
  readonly #parts = new Map<number, number>()
  #uploaded = 0
  #chunks = 0
  #retries = 0
  readonly #samples: Sample[] = []
  readonly #now: () => number

  constructor (total: number | null, now: () => number = Date.now) {
    this.#total = total
    this.#now = now
  }

  /** Sets where a part stands (part 0 for a plain upload). The first report of a part is a starting point, not speed. */
  report (part: number, offset: number, { chunk = false }: { chunk?: boolean } = {}): void {
    const first = !this.#parts.has(part)
    const before = this.#parts.get(part) ?? 0
    this.#parts.set(part, offset)
    this.#uploaded += offset - before
    if (chunk) this.#chunks++
    if (first && this.#samples.length === 0) {
      this.#samples.push({ time: this.#now(), bytes: this.#uploaded })
      return
    }
    if (first) {
      // Bytes a resumed part already had were not sent now: shift the window's base so they do not count as speed.
      for (const sample of this.#samples) sample.bytes += offset
      return
    }
    this.#sample()
  }

  retried (): void {
    this.#retries++
  }

  setTotal (total: number | null): void {
    this.#total = total
  }

  snapshot (): TusProgress {
    const total = this.#total
    const uploaded = this.#uploaded
    const speed = this.#speed()
    return {
      bytesUploaded: uploaded,
      bytesTotal: total,
      percent: total === null ? null : total === 0 ? 100 : Math.min(100, (uploaded / total) * 100),
      speed,
      eta: total === null ? null : uploaded >= total ? 0 : speed > 0 ? (total - uploaded) / speed : null,
      chunks: this.#chunks,
      retries: this.#retries
    }
  }

  #sample (): void {
    const now = this.#now()
    this.#samples.push({ time: now, bytes: this.#uploaded })
    // Keep one sample older than the window as its base, so a pause shows as a slower speed, not none.
    while (this.#samples.length > 2 && this.#samples[1]!.time <= now - WINDOW_MS) this.#samples.shift()
    if (this.#samples.length > MAX_SAMPLES) this.#samples.splice(1, 1)
  }

  #speed (): number {
    const first = this.#samples[0]
    const last = this.#samples[this.#samples.length - 1]
    if (first === undefined || last === undefined) return 0
    const elapsed = Math.max(this.#now(), last.time) - first.time
    return elapsed <= 0 ? 0 : Math.max(0, (last.bytes - first.bytes) / (elapsed / 1000))
  }
}
