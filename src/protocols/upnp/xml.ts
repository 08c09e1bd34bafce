/**
 * A small, strict, pure XML reader: enough for UPnP device descriptions and SOAP envelopes.
 *
 * Supported: elements, attributes, text, CDATA, comments, processing instructions (skipped),
 * the five predefined entities and numeric character references. Namespace prefixes are kept
 * in {@link XmlElement.qname} and dropped in {@link XmlElement.name}, so callers match by local
 * name. Rejected with a {@link ProtocolError}: DOCTYPE and ENTITY declarations (no
 * billion-laughs, no external entities), unknown entity references, mismatched tags, documents
 * deeper or larger than the configured bounds. It never throws.
 *
 * @packageDocumentation
 */
import { ProtocolError } from '../../errors.js';

/**
 * One element of a parsed document.
 *
 * @example
 * ```ts
 * const root = parseXml('<a:root xmlns:a="urn:x"><a:item id="1">hi</a:item></a:root>');
 * if (!(root instanceof ProtocolError)) console.log(root.name, root.children[0]?.text); // root hi
 * ```
 */
export interface XmlElement {
  /** Local name (prefix removed), for example `Envelope` for `s:Envelope`. */
  readonly name: string;
  /** Qualified name as written, for example `s:Envelope`. */
  readonly qname: string;
  /** Attributes by qualified name, values decoded. */
  readonly attributes: ReadonlyMap<string, string>;
  /** Child elements in document order. */
  readonly children: readonly XmlElement[];
  /** The element's own text (text and CDATA of direct children, concatenated, not trimmed). */
  readonly text: string;
}

/**
 * Bounds of {@link parseXml}.
 *
 * @example
 * ```ts
 * parseXml(body, { maxDepth: 16, maxBytes: 65_536 });
 * ```
 */
export interface XmlParseOptions {
  /** Deepest element nesting accepted. Default 32 (IGD descriptions need about 10). */
  readonly maxDepth?: number;
  /** Longest document accepted, in UTF-16 code units (≈ bytes for ASCII). Default 1 MiB. */
  readonly maxBytes?: number;
  /** Most elements accepted. Default 10 000. */
  readonly maxElements?: number;
  /** Protocol named in errors. Default `upnp`. */
  readonly protocol?: 'upnp' | 'ssdp';
  /** Gateway named in errors, where known. */
  readonly gateway?: string;
}

/**
 * Default deepest nesting accepted by {@link parseXml}.
 *
 * @example
 * ```ts
 * parseXml(body, { maxDepth: XML_MAX_DEPTH / 2 });
 * ```
 */
export const XML_MAX_DEPTH = 32;
/**
 * Default largest document accepted by {@link parseXml}.
 *
 * @example
 * ```ts
 * if (body.length > XML_MAX_BYTES) console.log('too large');
 * ```
 */
export const XML_MAX_BYTES = 1024 * 1024;
const XML_MAX_ELEMENTS = 10_000;

interface MutableElement {
  name: string;
  qname: string;
  attributes: Map<string, string>;
  children: MutableElement[];
  text: string;
}

class XmlFailure {
  constructor(
    readonly reason: string,
    readonly message: string,
  ) {}
}

const NAME_START = /[A-Za-z_:\u00C0-\uFFFF]/;
const NAME_CHAR = /[A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF]/;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Parses an XML document and returns its root element, or a {@link ProtocolError} (never throws).
 * `reason` is one of `empty`, `too-large`, `doctype`, `entity`, `too-deep`, `too-many-elements`,
 * `malformed`.
 *
 * @example
 * ```ts
 * const root = parseXml('<root><URLBase>http://192.168.1.1:5000/</URLBase></root>');
 * if (root instanceof ProtocolError) throw root;
 * console.log(childText(root, 'URLBase')); // http://192.168.1.1:5000/
 * ```
 */
export function parseXml(input: string, options: XmlParseOptions = {}): XmlElement | ProtocolError {
  const protocol = options.protocol ?? 'upnp';
  const fail = (reason: string, message: string): ProtocolError =>
    new ProtocolError(protocol, reason, `invalid XML: ${message}`, options.gateway);
  const maxBytes = options.maxBytes ?? XML_MAX_BYTES;
  if (typeof input !== 'string') return fail('malformed', 'not a string');
  if (input.length > maxBytes) return fail('too-large', `document longer than ${maxBytes} bytes`);
  try {
    const result = new Reader(input, options.maxDepth ?? XML_MAX_DEPTH, options.maxElements ?? XML_MAX_ELEMENTS).document();
    return result instanceof XmlFailure ? fail(result.reason, result.message) : result;
  } catch (error) {
    // Defensive: the reader reports failures as values; anything thrown here is a bug, still typed.
    return fail('malformed', error instanceof Error ? error.message : String(error));
  }
}

class Reader {
  private pos = 0;
  private elements = 0;

  constructor(
    private readonly src: string,
    private readonly maxDepth: number,
    private readonly maxElements: number,
  ) {}

  document(): XmlElement | XmlFailure {
    if (this.src.charCodeAt(0) === 0xfeff) this.pos = 1;
    let root: MutableElement | undefined;
    const stack: MutableElement[] = [];
    while (this.pos < this.src.length) {
      const top = stack[stack.length - 1];
      const lt = this.src.indexOf('<', this.pos);
      const textEnd = lt === -1 ? this.src.length : lt;
      if (textEnd > this.pos) {
        const raw = this.src.slice(this.pos, textEnd);
        if (top) {
          const decoded = decodeText(raw);
          if (decoded instanceof XmlFailure) return decoded;
          top.text += decoded;
        } else if (raw.trim() !== '') {
          return new XmlFailure('malformed', `text outside the root element at ${this.pos}`);
        }
        this.pos = textEnd;
        continue;
      }
      // At '<'.
      if (this.startsWith('<?')) {
        const end = this.src.indexOf('?>', this.pos + 2);
        if (end === -1) return new XmlFailure('malformed', 'unterminated processing instruction');
        this.pos = end + 2;
      } else if (this.startsWith('<!--')) {
        const end = this.src.indexOf('-->', this.pos + 4);
        if (end === -1) return new XmlFailure('malformed', 'unterminated comment');
        this.pos = end + 3;
      } else if (this.startsWith('<![CDATA[')) {
        if (!top) return new XmlFailure('malformed', 'CDATA outside the root element');
        const end = this.src.indexOf(']]>', this.pos + 9);
        if (end === -1) return new XmlFailure('malformed', 'unterminated CDATA section');
        top.text += this.src.slice(this.pos + 9, end);
        this.pos = end + 3;
      } else if (this.startsWithCaseless('<!DOCTYPE')) {
        return new XmlFailure('doctype', 'DOCTYPE declarations are not accepted');
      } else if (this.startsWithCaseless('<!ENTITY')) {
        return new XmlFailure('entity', 'ENTITY declarations are not accepted');
      } else if (this.startsWith('<!')) {
        return new XmlFailure('malformed', `unsupported markup declaration at ${this.pos}`);
      } else if (this.startsWith('</')) {
        this.pos += 2;
        const name = this.name();
        if (name instanceof XmlFailure) return name;
        this.skipSpace();
        if (this.src[this.pos] !== '>') return new XmlFailure('malformed', `expected '>' after </${name}`);
        this.pos += 1;
        const open = stack.pop();
        if (!open) return new XmlFailure('malformed', `unexpected closing tag </${name}>`);
        if (open.qname !== name) return new XmlFailure('malformed', `<${open.qname}> closed by </${name}>`);
      } else {
        if (root && stack.length === 0) return new XmlFailure('malformed', 'more than one root element');
        const opened = this.openTag();
        if (opened instanceof XmlFailure) return opened;
        const [element, selfClosing] = opened;
        this.elements += 1;
        if (this.elements > this.maxElements) return new XmlFailure('too-many-elements', `more than ${this.maxElements} elements`);
        if (stack.length + 1 > this.maxDepth) return new XmlFailure('too-deep', `nesting deeper than ${this.maxDepth}`);
        if (top) top.children.push(element);
        else root = element;
        if (!selfClosing) stack.push(element);
      }
    }
    if (stack.length > 0) return new XmlFailure('malformed', `unclosed element <${stack[stack.length - 1]?.qname}>`);
    if (!root) return new XmlFailure('empty', 'no root element');
    return root;
  }

  private openTag(): [MutableElement, boolean] | XmlFailure {
    this.pos += 1;
    const qname = this.name();
    if (qname instanceof XmlFailure) return qname;
    const attributes = new Map<string, string>();
    for (;;) {
      const hadSpace = this.skipSpace();
      const c = this.src[this.pos];
      if (c === undefined) return new XmlFailure('malformed', `unterminated tag <${qname}`);
      if (c === '>') {
        this.pos += 1;
        return [element(qname, attributes), false];
      }
      if (c === '/') {
        if (this.src[this.pos + 1] !== '>') return new XmlFailure('malformed', `expected '/>' in <${qname}>`);
        this.pos += 2;
        return [element(qname, attributes), true];
      }
      if (!hadSpace) return new XmlFailure('malformed', `expected whitespace before attribute in <${qname}>`);
      const attrName = this.name();
      if (attrName instanceof XmlFailure) return attrName;
      this.skipSpace();
      if (this.src[this.pos] !== '=') return new XmlFailure('malformed', `attribute ${attrName} without '='`);
      this.pos += 1;
      this.skipSpace();
      const quote = this.src[this.pos];
      if (quote !== '"' && quote !== "'") return new XmlFailure('malformed', `attribute ${attrName} value not quoted`);
      const end = this.src.indexOf(quote, this.pos + 1);
      if (end === -1) return new XmlFailure('malformed', `unterminated attribute ${attrName}`);
      const raw = this.src.slice(this.pos + 1, end);
      if (raw.includes('<')) return new XmlFailure('malformed', `'<' in attribute ${attrName}`);
      const value = decodeText(raw);
      if (value instanceof XmlFailure) return value;
      if (attributes.has(attrName)) return new XmlFailure('malformed', `duplicate attribute ${attrName}`);
      attributes.set(attrName, value);
      this.pos = end + 1;
    }
  }

  private name(): string | XmlFailure {
    const start = this.pos;
    const first = this.src[this.pos];
    if (first === undefined || !NAME_START.test(first)) return new XmlFailure('malformed', `expected a name at ${start}`);
    this.pos += 1;
    while (this.pos < this.src.length && NAME_CHAR.test(this.src[this.pos] as string)) this.pos += 1;
    return this.src.slice(start, this.pos);
  }

  private skipSpace(): boolean {
    const start = this.pos;
    while (this.pos < this.src.length) {
      const c = this.src.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos += 1;
    }
    return this.pos > start;
  }

  private startsWith(prefix: string): boolean {
    return this.src.startsWith(prefix, this.pos);
  }

  private startsWithCaseless(prefix: string): boolean {
    return this.src.slice(this.pos, this.pos + prefix.length).toUpperCase() === prefix;
  }
}

function element(qname: string, attributes: Map<string, string>): MutableElement {
  const colon = qname.lastIndexOf(':');
  return { name: colon === -1 ? qname : qname.slice(colon + 1), qname, attributes, children: [], text: '' };
}

function decodeText(raw: string): string | XmlFailure {
  if (!raw.includes('&')) return raw;
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const amp = raw.indexOf('&', i);
    if (amp === -1) {
      out += raw.slice(i);
      break;
    }
    out += raw.slice(i, amp);
    const semi = raw.indexOf(';', amp + 1);
    if (semi === -1 || semi - amp > 12) return new XmlFailure('entity', 'unterminated entity reference');
    const ref = raw.slice(amp + 1, semi);
    const predefined = PREDEFINED[ref];
    if (predefined !== undefined && Object.prototype.hasOwnProperty.call(PREDEFINED, ref)) {
      out += predefined;
    } else if (/^#[0-9]{1,7}$/.test(ref) || /^#x[0-9A-Fa-f]{1,6}$/.test(ref)) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      const valid =
        code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
      if (!valid) return new XmlFailure('entity', `invalid character reference &${ref};`);
      out += String.fromCodePoint(code);
    } else {
      return new XmlFailure('entity', `unknown entity &${ref};`);
    }
    i = semi + 1;
  }
  return out;
}

/**
 * Escapes text for use in XML content or a quoted attribute value (`& < > " '`).
 *
 * @example
 * ```ts
 * escapeXml('a<b & "c"'); // 'a&lt;b &amp; &quot;c&quot;'
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${c === '&' ? 'amp' : c === '<' ? 'lt' : c === '>' ? 'gt' : c === '"' ? 'quot' : 'apos'};`);
}

/**
 * The first child element with the given local name.
 *
 * @example
 * ```ts
 * const body = child(envelope, 'Body');
 * ```
 */
export function child(element: XmlElement, localName: string): XmlElement | undefined {
  return element.children.find((c) => c.name === localName);
}

/**
 * All child elements with the given local name.
 *
 * @example
 * ```ts
 * for (const service of children(serviceList, 'service')) console.log(childText(service, 'serviceType'));
 * ```
 */
export function children(element: XmlElement, localName: string): XmlElement[] {
  return element.children.filter((c) => c.name === localName);
}

/**
 * The trimmed text of the first child element with the given local name, or `undefined`.
 *
 * @example
 * ```ts
 * childText(service, 'controlURL'); // '/ctl/IPConn'
 * ```
 */
export function childText(element: XmlElement, localName: string): string | undefined {
  const found = child(element, localName);
  return found === undefined ? undefined : found.text.trim();
}

/**
 * An attribute's value looked up by local name (prefix ignored), or `undefined`.
 *
 * @example
 * ```ts
 * attribute(envelope, 'encodingStyle'); // 'http://schemas.xmlsoap.org/soap/encoding/'
 * ```
 */
export function attribute(element: XmlElement, localName: string): string | undefined {
  for (const [qname, value] of element.attributes) {
    const colon = qname.lastIndexOf(':');
    if ((colon === -1 ? qname : qname.slice(colon + 1)) === localName) return value;
  }
  return undefined;
}
