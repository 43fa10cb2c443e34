/**
 * Queries that Kysely builds and compiles once and the repository then runs with
 * new values. Building a query (builders, operation nodes, freezing) and compiling
 * it to SQL cost as much main-thread CPU as SQLite took to run it on small
 * uploads (profiles: about 8% of the server's samples for a POST + PATCH, against
 * 15% in SQLite itself), for SQL that never changes: the hot queries come in a
 * handful of shapes, and only their values differ.
 *
 * A query is built once with a placeholder per value; its compiled parameters then
 * say where each value goes. A query whose placeholders do not all come out as
 * parameters of their own (a builder that inlined or repeated one) is never
 * reused, and neither is any query on a Kysely instance with plugins, which may
 * transform each query and its result by the query's identity.
 */
import type { CompiledQuery, Compilable, Kysely, QueryResult } from 'kysely'

/** Distinct shapes kept; the repository's hot queries have a few dozen at most. */
const MAX_SHAPES = 128

interface Shape {
  compiled: CompiledQuery
  /** For each compiled parameter, the index of the value it takes. */
  slots: number[]
}

const placeholder = (i: number): string => `\u0000fastify-tus:value:${i}\u0000`

export class CompiledQueries {
  private readonly shapes = new Map<string, Shape | null>()
  private readonly reuse: boolean

  constructor (private readonly db: Kysely<any>) {
    this.reuse = db.getExecutor().plugins.length === 0
  }

  /**
   * Runs the query `build` makes from `values`. The first call for `key` builds it
   * with placeholders and compiles it; later calls with the same key run that SQL
   * with their values. `key` must name everything about the query except its values.
   */
  async run<R> (key: string, values: readonly unknown[], build: (values: readonly unknown[]) => Compilable<R>): Promise<QueryResult<R>> {
    const shape = this.reuse ? this.shapeOf(key, values.length, build) : null
    if (shape === null) return await this.db.executeQuery(build(values))
    const parameters = shape.slots.map((slot) => values[slot])
    return await this.db.executeQuery<R>({ ...shape.compiled, parameters } as CompiledQuery<R>)
  }

  private shapeOf (key: string, count: number, build: (values: readonly unknown[]) => Compilable<unknown>): Shape | null {
    let shape = this.shapes.get(key)
    if (shape !== undefined) return shape
    const placeholders = Array.from({ length: count }, (_, i) => placeholder(i))
    const compiled = build(placeholders).compile()
    const slots = compiled.parameters.map((parameter) => placeholders.indexOf(parameter as string))
    const usable = slots.length === count && slots.every((slot) => slot >= 0) && new Set(slots).size === count
    shape = usable ? { compiled, slots } : null
    if (this.shapes.size >= MAX_SHAPES) this.shapes.delete(this.shapes.keys().next().value as string)
    this.shapes.set(key, shape)
    return shape
  }
}
