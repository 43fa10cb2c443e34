/**
 * The header fields of draft-ietf-httpbis-resumable-upload, parsed and
 * serialised as RFC 9651 Structured Fields: only the subset the draft needs,
 * but that subset exactly as the RFC's parsing algorithms (section 4.2) say.
 *
 * The draft's rule for every field it defines: a value that does not parse as
 * the field's type is ignored, i.e. the field is treated as absent. So every
 * parser here answers `undefined` for "absent or invalid" and never throws;
 * what an absent field means is the caller's decision.
 *
 *   Upload-Offset, Upload-Length    Item, non-negative sf-integer
 *   Upload-Complete                 Item, sf-boolean
 *   Upload-Draft-Interop-Version    Item, sf-integer
 *   Upload-Limit                    Dictionary of sf-integers
 *
 * Multiple field lines: RFC 9651 4.2 joins them with ", " before parsing, so
 * `Upload-Offset: 1` twice is `1, 1`, which is not an Item: the field is
 * invalid. Node already joins repeats of these (unknown) headers that way; an
 * array is joined the same way here.
 */

/** A header value as node:http hands it over. */
export type FieldValue = string | readonly string[] | undefined

/** Header bag with lower-case names, e.g. `IncomingHttpHeaders`. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>

/** Largest magnitude of an sf-integer: 15 decimal digits (RFC 9651 3.3.1). */
export const SF_INTEGER_MAX = 999_999_999_999_999

// ---------------------------------------------------------------------------
// Parsing (RFC 9651 section 4.2). A small cursor parser; `fail` unwinds to the
// entry point, which turns it into `undefined`.

type BareItem =
  | { type: 'integer', value: number }
  | { type: 'decimal', value: number }
  | { type: 'string', value: string }
  | { type: 'token', value: string }
  | { type: 'binary', value: string }
  | { type: 'boolean', value: boolean }
  | { type: 'date', value: number }
  | { type: 'displaystring', value: string }

interface Item { value: BareItem, params: Map<string, BareItem> }
interface InnerList { items: Item[], params: Map<string, BareItem> }
type Member = Item | InnerList

class ParseError extends Error {}
const fail = (): never => { throw new ParseError() }

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9'
const isLcAlpha = (c: string | undefined): boolean => c !== undefined && c >= 'a' && c <= 'z'
const isAlpha = (c: string | undefined): boolean => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
/** tchar of RFC 9110 5.6.2. */
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/
const isTokenChar = (c: string | undefined): boolean => c !== undefined && (TCHAR.test(c) || c === ':' || c === '/')
const isKeyChar = (c: string | undefined): boolean =>
  c !== undefined && (isLcAlpha(c) || isDigit(c) || c === '_' || c === '-' || c === '.' || c === '*')
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/
const UTF8 = new TextDecoder('utf-8', { fatal: true })

class Parser {
  private pos = 0
  constructor (private readonly input: string) {}

  get empty (): boolean { return this.pos >= this.input.length }
  private peek (): string | undefined { return this.input[this.pos] }
  private next (): string | undefined { return this.input[this.pos++] }

  discardSP (): void { while (this.peek() === ' ') this.pos++ }
  discardOWS (): void { while (this.peek() === ' ' || this.peek() === '\t') this.pos++ }

  /** 4.2.3 */
  item (): Item {
    const value = this.bareItem()
    return { value, params: this.parameters() }
  }

  /** 4.2.1.1 */
  itemOrInnerList (): Member {
    return this.peek() === '(' ? this.innerList() : this.item()
  }

  /** 4.2.1.2 */
  innerList (): InnerList {
    if (this.next() !== '(') fail()
    const items: Item[] = []
    while (!this.empty) {
      this.discardSP()
      if (this.peek() === ')') {
        this.pos++
        return { items, params: this.parameters() }
      }
      items.push(this.item())
      const c = this.peek()
      if (c !== ' ' && c !== ')') fail()
    }
    return fail()
  }

  /** 4.2.2 */
  dictionary (): Map<string, Member> {
    const dict = new Map<string, Member>()
    while (!this.empty) {
      const key = this.key()
      let member: Member
      if (this.peek() === '=') {
        this.pos++
        member = this.itemOrInnerList()
      } else {
        member = { value: { type: 'boolean', value: true }, params: this.parameters() }
      }
      dict.set(key, member)
      this.discardOWS()
      if (this.empty) return dict
      if (this.next() !== ',') fail()
      this.discardOWS()
      if (this.empty) fail() // trailing comma
    }
    return dict
  }

  /** 4.2.3.1 */
  bareItem (): BareItem {
    const c = this.peek()
    if (c === '-' || isDigit(c)) return this.number()
    if (c === '"') return this.string()
    if (c === ':') return this.byteSequence()
    if (c === '?') return this.boolean()
    if (isAlpha(c) || c === '*') return this.token()
    if (c === '@') return this.date()
    if (c === '%') return this.displayString()
    return fail()
  }

  /** 4.2.3.2 */
  parameters (): Map<string, BareItem> {
    const params = new Map<string, BareItem>()
    while (!this.empty) {
      if (this.peek() !== ';') break
      this.pos++
      this.discardSP()
      const key = this.key()
      let value: BareItem = { type: 'boolean', value: true }
      if (this.peek() === '=') {
        this.pos++
        value = this.bareItem()
      }
      params.set(key, value)
    }
    return params
  }

  /** 4.2.3.3 */
  key (): string {
    const first = this.peek()
    if (!isLcAlpha(first) && first !== '*') fail()
    const start = this.pos
    while (isKeyChar(this.peek())) this.pos++
    return this.input.slice(start, this.pos)
  }

  /** 4.2.4: Integer or Decimal. */
  number (): BareItem {
    let sign = 1
    if (this.peek() === '-') { this.pos++; sign = -1 }
    if (this.empty || !isDigit(this.peek())) fail()
    let digits = ''
    let decimal = false
    while (!this.empty) {
      const c = this.peek()
      if (isDigit(c)) {
        digits += c
        this.pos++
      } else if (!decimal && c === '.') {
        if (digits.length > 12) fail()
        digits += c
        decimal = true
        this.pos++
      } else {
        break
      }
      if (!decimal && digits.length > 15) fail()
      if (decimal && digits.length > 16) fail()
    }
    if (!decimal) {
      // `-0` is 0: no negative zero leaks out.
      return { type: 'integer', value: sign * Number(digits) + 0 }
    }
    if (digits.endsWith('.')) fail()
    if (digits.length - digits.indexOf('.') - 1 > 3) fail()
    return { type: 'decimal', value: sign * Number(digits) + 0 }
  }

  /** 4.2.5 */
  string (): BareItem {
    if (this.next() !== '"') fail()
    let out = ''
    while (!this.empty) {
      const c = this.next()!
      if (c === '\\') {
        if (this.empty) fail()
        const escaped = this.next()
        if (escaped !== '"' && escaped !== '\\') fail()
        out += escaped
      } else if (c === '"') {
        return { type: 'string', value: out }
      } else {
        const code = c.charCodeAt(0)
        if (code < 0x20 || code > 0x7e) fail()
        out += c
      }
    }
    return fail()
  }

  /** 4.2.6 */
  token (): BareItem {
    const first = this.peek()
    if (!isAlpha(first) && first !== '*') fail()
    const start = this.pos
    this.pos++
    while (isTokenChar(this.peek())) this.pos++
    return { type: 'token', value: this.input.slice(start, this.pos) }
  }

  /** 4.2.7 */
  byteSequence (): BareItem {
    if (this.next() !== ':') fail()
    const end = this.input.indexOf(':', this.pos)
    if (end < 0) fail()
    const b64 = this.input.slice(this.pos, end)
    this.pos = end + 1
    if (!BASE64_CHARS.test(b64)) fail()
    // Padding may be synthesised (RFC 9651 4.2.7), but a lone sextet can never decode.
    if (b64.replace(/=+$/, '').length % 4 === 1) fail()
    return { type: 'binary', value: b64 }
  }

  /** 4.2.8 */
  boolean (): BareItem {
    if (this.next() !== '?') fail()
    const c = this.next()
    if (c === '1') return { type: 'boolean', value: true }
    if (c === '0') return { type: 'boolean', value: false }
    return fail()
  }

  /** 4.2.9 */
  date (): BareItem {
    if (this.next() !== '@') fail()
    const n = this.number()
    if (n.type !== 'integer') fail()
    return { type: 'date', value: n.value as number }
  }

  /** 4.2.10 */
  displayString (): BareItem {
    if (this.next() !== '%' || this.next() !== '"') fail()
    const bytes: number[] = []
    while (!this.empty) {
      const c = this.next()!
      const code = c.charCodeAt(0)
      if (code <= 0x1f || code >= 0x7f) fail()
      if (c === '%') {
        const hex = this.input.slice(this.pos, this.pos + 2)
        if (!/^[0-9a-f]{2}$/.test(hex)) fail()
        bytes.push(parseInt(hex, 16))
        this.pos += 2
      } else if (c === '"') {
        try {
          return { type: 'displaystring', value: UTF8.decode(new Uint8Array(bytes)) }
        } catch {
          return fail()
        }
      } else {
        bytes.push(code)
      }
    }
    return fail()
  }
}

/** RFC 9651 4.2 steps 1-2: combine field lines; only ASCII is acceptable. */
function combine (value: FieldValue): string | undefined {
  if (value === undefined) return undefined
  const joined = typeof value === 'string' ? value : value.join(', ')
  if (/[^\x00-\x7f]/.test(joined)) return undefined
  return joined
}

/** Parse a field value as an Item; `undefined` when it is absent or does not parse. */
function parseItem (value: FieldValue): Item | undefined {
  const input = combine(value)
  if (input === undefined) return undefined
  const p = new Parser(input)
  try {
    p.discardSP()
    const item = p.item()
    p.discardSP()
    return p.empty ? item : undefined
  } catch (err) {
    if (err instanceof ParseError) return undefined
    throw err
  }
}

/** Parse a field value as a Dictionary; `undefined` when it does not parse. An empty field is an empty Dictionary. */
function parseDictionary (value: FieldValue): Map<string, Member> | undefined {
  const input = combine(value)
  if (input === undefined) return undefined
  const p = new Parser(input)
  try {
    p.discardSP()
    const dict = p.dictionary()
    p.discardSP()
    return p.empty ? dict : undefined
  } catch (err) {
    if (err instanceof ParseError) return undefined
    throw err
  }
}

// ---------------------------------------------------------------------------
// The draft's fields.

/**
 * An Item whose bare item is an sf-integer (parameters allowed and ignored).
 * Negative values are returned as they are; see `parseNonNegative`.
 */
export function parseSfInteger (value: FieldValue): number | undefined {
  const item = parseItem(value)
  return item?.value.type === 'integer' ? item.value.value : undefined
}

/** An Item whose bare item is an sf-boolean: `?1` → true, `?0` → false. */
export function parseSfBoolean (value: FieldValue): boolean | undefined {
  const item = parseItem(value)
  return item?.value.type === 'boolean' ? item.value.value : undefined
}

/** A non-negative sf-integer (Upload-Offset, Upload-Length); anything else → undefined. */
export function parseNonNegative (value: FieldValue): number | undefined {
  const n = parseSfInteger(value)
  return n !== undefined && n >= 0 ? n : undefined
}

/** `Upload-Draft-Interop-Version` of a request, as an sf-integer; undefined when absent or invalid. */
export function parseInteropVersion (headers: HeaderBag): number | undefined {
  return parseSfInteger(headers['upload-draft-interop-version'])
}

/** The limits a server announces in `Upload-Limit`. All values are integers; `maxAge` and `expires` are seconds. */
export interface UploadLimits {
  maxSize?: number
  minSize?: number
  maxAppendSize?: number
  minAppendSize?: number
  /** Remaining lifetime in seconds (`max-age`, interop 7 and later). */
  maxAge?: number
  /** The same quantity under its interop-6 name (`expires`). */
  expires?: number
}

/** The name `Upload-Limit` gives the remaining lifetime in an interop version: `expires` up to 6 (draft -05), `max-age` from 7 (-06) on. */
export const ageKeyFor = (interopVersion: number | undefined): 'expires' | 'max-age' =>
  interopVersion !== undefined && interopVersion <= 6 ? 'expires' : 'max-age'

const LIMIT_KEYS = [
  ['min-size', 'minSize'],
  ['max-size', 'maxSize'],
  ['min-append-size', 'minAppendSize'],
  ['max-append-size', 'maxAppendSize']
] as const

function checkLimit (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > SF_INTEGER_MAX) {
    throw new RangeError(`Upload-Limit ${name} must be an integer from 0 to ${SF_INTEGER_MAX}, got ${value}`)
  }
}

/**
 * `Upload-Limit` as a Dictionary string, e.g. `min-size=0, max-size=100`.
 *
 * The lifetime is taken from `maxAge`, or `expires` when `maxAge` is not set
 * (they are the same quantity), and written under the key the interop version
 * uses (`ageKeyFor`); without a version, the current name `max-age`.
 * With no limit at all the answer is `min-size=0`: the draft forbids an empty
 * value. Throws a RangeError for a value that is not a non-negative sf-integer
 * (round a lifetime down before passing it).
 */
export function serializeUploadLimit (limits: UploadLimits, interopVersion?: number): string {
  const members: string[] = []
  for (const [key, prop] of LIMIT_KEYS) {
    const value = limits[prop]
    if (value === undefined) continue
    checkLimit(key, value)
    members.push(`${key}=${value}`)
  }
  if (limits.maxAge !== undefined && limits.expires !== undefined && limits.maxAge !== limits.expires) {
    throw new RangeError('Upload-Limit: maxAge and expires are the same limit; give one')
  }
  const age = limits.maxAge ?? limits.expires
  if (age !== undefined) {
    const key = ageKeyFor(interopVersion)
    checkLimit(key, age)
    members.push(`${key}=${age}`)
  }
  return members.length === 0 ? 'min-size=0' : members.join(', ')
}

/**
 * Parse `Upload-Limit` (for clients and tests). Unknown keys are ignored; a
 * known key whose value is not a non-negative sf-integer makes the whole field
 * invalid (the draft allows ignoring it or treating the message as malformed),
 * as does a field that is not a Dictionary: both → undefined. An absent field
 * is undefined; an empty one is `{}`. Both `max-age` and `expires` are read,
 * into their own properties.
 */
export function parseUploadLimit (value: FieldValue): UploadLimits | undefined {
  if (value === undefined) return undefined
  const dict = parseDictionary(value)
  if (dict === undefined) return undefined
  const limits: UploadLimits = {}
  const known: ReadonlyArray<readonly [string, keyof UploadLimits]> = [...LIMIT_KEYS, ['max-age', 'maxAge'], ['expires', 'expires']]
  for (const [key, prop] of known) {
    const member = dict.get(key)
    if (member === undefined) continue
    if (!('value' in member) || member.value.type !== 'integer' || member.value.value < 0) return undefined
    limits[prop] = member.value.value
  }
  return limits
}

/** `?1` / `?0`. */
export const serializeSfBoolean = (value: boolean): string => value ? '?1' : '?0'

/** An sf-integer; throws a RangeError for a non-integer or more than 15 digits. */
export function serializeSfInteger (value: number): string {
  if (!Number.isSafeInteger(value) || Math.abs(value) > SF_INTEGER_MAX) {
    throw new RangeError(`not an sf-integer: ${value}`)
  }
  return String(value)
}
