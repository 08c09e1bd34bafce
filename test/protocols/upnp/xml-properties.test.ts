import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import { escapeXml, parseXml, XML_MAX_BYTES, XML_MAX_DEPTH, type XmlElement } from '../../../src/protocols/upnp/xml.js';
import { anyText, assertTyped, codeUnit, record, RUNS, textMutations } from '../../../bench/lib/arbitraries.js';
import { mutateText } from '../../../bench/lib/mutate.js';

// ---------------------------------------------------------------------------------------------
// A model of documents the reader accepts, and its serialisation.

interface ModelElement {
  readonly qname: string;
  readonly attributes: readonly (readonly [string, string])[];
  readonly content: readonly ModelContent[];
  readonly selfClose: boolean;
}
type ModelContent =
  | { readonly kind: 'text'; readonly text: string; readonly style: 'escaped' | 'refs' }
  | { readonly kind: 'cdata'; readonly text: string }
  | { readonly kind: 'comment'; readonly text: string }
  | { readonly kind: 'element'; readonly element: ModelElement };

const nameStart = fc.constantFrom(...'abcXYZ_éü中'.split(''));
const nameChar = fc.constantFrom(...'abcXYZ_019.-·é'.split(''));
const ncName = fc.tuple(nameStart, fc.string({ unit: nameChar, maxLength: 6 })).map(([a, b]) => a + b);
/** A name, sometimes prefixed (`u:Name`). */
export const xmlName = fc.oneof(ncName, fc.tuple(ncName, ncName).map(([p, l]) => `${p}:${l}`));

/** Text of any code units, including the five specials, controls and lone surrogates. */
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: codeUnit, maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('<', '>', '&', '"', "'", ';', '#', ']', ' ', '\r\n', 'a'), maxLength: 12 }),
);

/** Characters a numeric character reference may name (XML 1.0 Char). */
const isXmlChar = (code: number): boolean =>
  code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);

/** Text written with a character reference for every character that can have one. */
function withRefs(value: string): string {
  let out = '';
  let i = 0;
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    out += !isXmlChar(code) ? escapeXml(ch) : i++ % 2 === 0 ? `&#${code};` : `&#x${code.toString(16)};`;
  }
  return out;
}

const contentLeaf: fc.Arbitrary<ModelContent> = fc.oneof(
  record({ kind: fc.constant('text' as const), text, style: fc.constantFrom('escaped' as const, 'refs' as const) }),
  record({ kind: fc.constant('cdata' as const), text: text.filter((t) => !t.includes(']]>')) }),
  record({ kind: fc.constant('comment' as const), text: text.filter((t) => !t.includes('-->') && !t.endsWith('-')) }),
);

const { element: modelElement } = fc.letrec<{ element: ModelElement; content: ModelContent }>((tie) => ({
  element: record({
    qname: xmlName,
    attributes: fc.uniqueArray(fc.tuple(xmlName, text), { maxLength: 3, selector: ([name]) => name }),
    content: fc.array(tie('content'), { maxLength: 4, depthIdentifier: 'xml' }),
    selfClose: fc.boolean(),
  }),
  content: fc.oneof({ depthSize: 'small', withCrossShrink: true, depthIdentifier: 'xml' }, contentLeaf, record({ kind: fc.constant('element' as const), element: tie('element') })),
}));

/** The document as tokens: any boundary between two tokens is a markup boundary. */
function tokens(element: ModelElement, quote: '"' | "'"): string[] {
  const attrs = element.attributes.map(([name, value]) => ` ${name}=${quote}${escapeXml(value)}${quote}`).join('');
  if (element.content.length === 0 && element.selfClose) return [`<${element.qname}${attrs}/>`];
  const out = [`<${element.qname}${attrs}>`];
  for (const c of element.content) {
    if (c.kind === 'element') out.push(...tokens(c.element, quote));
    else if (c.kind === 'text') out.push(c.style === 'escaped' ? escapeXml(c.text) : withRefs(c.text));
    else if (c.kind === 'cdata') out.push(`<![CDATA[${c.text}]]>`);
    else out.push(`<!--${c.text}-->`);
  }
  out.push(`</${element.qname}>`);
  return out;
}

const prologItem = fc.constantFrom('<?xml version="1.0" encoding="utf-8"?>', '<!-- generated -->', '<?pi data?>', '\n', ' \t\r\n');
const documentTokens = fc
  .tuple(fc.boolean(), fc.array(prologItem, { maxLength: 3 }), modelElement, fc.array(prologItem, { maxLength: 2 }), fc.constantFrom('"' as const, "'" as const))
  .map(([bom, prolog, root, epilog, quote]) => ({ root, tokens: [bom ? '\uFEFF' : '', ...prolog, ...tokens(root, quote), ...epilog] }));

const depth = (e: ModelElement): number => 1 + Math.max(0, ...e.content.map((c) => (c.kind === 'element' ? depth(c.element) : 0)));

/** What the reader should make of a model element. */
function expected(e: ModelElement): unknown {
  const colon = e.qname.lastIndexOf(':');
  return {
    name: colon === -1 ? e.qname : e.qname.slice(colon + 1),
    qname: e.qname,
    attributes: new Map(e.attributes),
    children: e.content.flatMap((c) => (c.kind === 'element' ? [expected(c.element)] : [])),
    text: e.content.map((c) => (c.kind === 'text' || c.kind === 'cdata' ? c.text : '')).join(''),
  };
}

/** The parsed tree as plain data (the reader's elements are plain objects already; this drops nothing). */
function plain(e: XmlElement): unknown {
  return { name: e.name, qname: e.qname, attributes: new Map(e.attributes), children: e.children.map(plain), text: e.text };
}

const reasonOf = (input: string, options?: Parameters<typeof parseXml>[1]): string => {
  const result = parseXml(input, options);
  if (!(result instanceof ProtocolError)) assert.fail('expected a ProtocolError');
  return result.reason;
};

/** A chain of `depth` nested elements with siblings, closed properly. */
const chain = (depth: number, name = 'd'): string => `${`<${name}><s/>`.repeat(depth - 1)}<${name}>x</${name}>${`</${name}>`.repeat(depth - 1)}`;

// ---------------------------------------------------------------------------------------------

describe('XML reader properties', () => {
  it('parses every generated document within the limits to the model (names, attributes, text, escaping, CDATA, refs)', () => {
    fc.assert(
      fc.property(documentTokens, ({ root, tokens }) => {
        const parsed = parseXml(tokens.join(''));
        if (parsed instanceof ProtocolError) assert.fail(`${parsed.reason}: ${parsed.message}`);
        assert.deepEqual(plain(parsed), expected(root));
      }),
      RUNS,
    );
  });

  it('enforces maxDepth exactly: deeper is too-deep, within parses', () => {
    fc.assert(
      fc.property(documentTokens, fc.integer({ min: 1, max: 12 }), ({ root, tokens }, maxDepth) => {
        const parsed = parseXml(tokens.join(''), { maxDepth });
        if (depth(root) > maxDepth) {
          assert.equal(parsed instanceof ProtocolError ? parsed.reason : 'parsed', 'too-deep');
        } else {
          assert.equal(parsed instanceof ProtocolError ? parsed.reason : 'parsed', 'parsed');
        }
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 * XML_MAX_DEPTH }), (n) => {
        const parsed = parseXml(chain(n));
        assert.equal(parsed instanceof ProtocolError ? parsed.reason : 'parsed', n > XML_MAX_DEPTH ? 'too-deep' : 'parsed');
      }),
      RUNS,
    );
  });

  it('rejects a DOCTYPE at any markup boundary, in any case, as doctype', () => {
    const doctype = fc.tuple(fc.constantFrom('<!DOCTYPE', '<!doctype', '<!DocType'), fc.constantFrom(' root>', ' root SYSTEM "file:///etc/passwd">', ' x [<!ENTITY a "b">]>'));
    fc.assert(
      fc.property(documentTokens, fc.nat(), doctype, ({ tokens }, at, [open, rest]) => {
        const i = 1 + (at % tokens.length); // after the optional BOM
        assert.equal(reasonOf([...tokens.slice(0, i), open + rest, ...tokens.slice(i)].join('')), 'doctype');
      }),
      RUNS,
    );
  });

  it('rejects an ENTITY declaration at any markup boundary as entity, and any undeclared entity reference', () => {
    fc.assert(
      fc.property(documentTokens, fc.nat(), ncName, ({ tokens }, at, name) => {
        const i = 1 + (at % tokens.length);
        assert.equal(reasonOf([...tokens.slice(0, i), `<!ENTITY ${name} "x">`, ...tokens.slice(i)].join('')), 'entity');
      }),
      RUNS,
    );
    fc.assert(
      fc.property(
        ncName.filter((n) => !['lt', 'gt', 'amp', 'quot', 'apos'].includes(n)),
        fc.boolean(),
        (name, inAttribute) => {
          const doc = inAttribute ? `<r a="&${name};"/>` : `<r>&${name};</r>`;
          assert.equal(reasonOf(doc), 'entity');
        },
      ),
      RUNS,
    );
  });

  it('rejects billion-laughs documents of any width and depth without expanding them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 2, max: 20 }), fc.boolean(), (levels, width, withDoctype) => {
        const decls = [`<!ENTITY lol0 "lol">`];
        for (let l = 1; l <= levels; l++) decls.push(`<!ENTITY lol${l} "${`&lol${l - 1};`.repeat(width)}">`);
        const body = `<root>&lol${levels};</root>`;
        const doc = withDoctype ? `<?xml version="1.0"?>\n<!DOCTYPE lolz [\n${decls.join('\n')}\n]>\n${body}` : `${decls.join('\n')}\n${body}`;
        assert.equal(reasonOf(doc), withDoctype ? 'doctype' : 'entity');
        // The reference alone, with no declaration, is an unknown entity.
        assert.equal(reasonOf(body), 'entity');
      }),
      RUNS,
    );
    assert.equal(reasonOf(readFileSync(new URL('../../fixtures/upnp/billion-laughs.xml', import.meta.url), 'utf8')), 'doctype');
  });

  it('returns a typed result for arbitrary text, never throws', () => {
    fc.assert(
      fc.property(anyText, fc.record({ maxDepth: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }) }), (input, { maxDepth }) => {
        assertTyped(parseXml(input, maxDepth === undefined ? {} : { maxDepth }), 'upnp');
      }),
      RUNS,
    );
  });

  it('returns a typed result for mutated documents (fixtures and generated), never throws', () => {
    const dir = new URL('../../fixtures/upnp/', import.meta.url);
    const fixtures = readdirSync(dir)
      .filter((f) => f.endsWith('.xml'))
      .map((f) => readFileSync(new URL(f, dir), 'utf8'));
    const valid = fc.oneof(fc.constantFrom(...fixtures), documentTokens.map((d) => d.tokens.join('')));
    fc.assert(
      fc.property(valid, textMutations, (doc, mutations) => {
        assertTyped(parseXml(mutateText(doc, mutations)), 'upnp');
      }),
      RUNS,
    );
  });

  // Exponential blow-up would hang: each input is ~1 MB (under the 1 MiB limit, so it is really
  // read). Nothing here measures time; the generous test timeout only turns a hang into a failure.
  it('reads 1 MB pathological inputs to the right typed answer', { timeout: 120_000 }, () => {
    const MB = 1_000_000;
    const fill = (unit: string, prefix = '', suffix = ''): string => prefix + unit.repeat(Math.floor((MB - prefix.length - suffix.length) / unit.length)) + suffix;
    const cases: [string, string, string | undefined][] = [
      ['open tags only', fill('<a>'), 'too-deep'],
      ['siblings past the element limit', fill('<b/>', '<a>', '</a>'), 'too-many-elements'],
      ['bare ampersands', fill('&', '<a>', '</a>'), 'entity'],
      ['far semicolon', fill('x', '<a>&', ';</a>'), 'entity'],
      ['predefined entities', fill('&amp;', '<a>', '</a>'), undefined],
      ['character references', fill('&#x1F600;', '<a>', '</a>'), undefined],
      ['one long text node', fill('x', '<a>', '</a>'), undefined],
      ['one long attribute', fill('v', '<a b="', '"/>'), undefined],
      ['many attributes', `<a${Array.from({ length: 60_000 }, (_, i) => ` a${i}="${i}"`).join('')}/>`, undefined],
      ['duplicate attributes', fill(' a="1"', '<a', '/>'), 'malformed'],
      ['unterminated attribute', fill('x', '<a b="'), 'malformed'],
      ['unterminated comment', fill('-', '<!--'), 'malformed'],
      ['many comments', fill('<!---->', '<a>', '</a>'), undefined],
      ['unterminated CDATA', fill(']', '<a><![CDATA['), 'malformed'],
      ['unterminated PI', fill('?', '<?'), 'malformed'],
      ['many PIs', fill('<?p?>', '', '<a/>'), undefined],
      ['less-than storm', fill('<'), 'malformed'],
      ['close-tag storm', fill('</a', '<a>'), 'malformed'],
      ['deep within the limit, repeated', fill(chain(XML_MAX_DEPTH, 'q'), '<r>', '</r>'), 'too-deep'],
      ['nested within the limit, repeated', fill(chain(XML_MAX_DEPTH - 1, 'q'), '<r>', '</r>'), 'too-many-elements'],
      ['huge billion-laughs', fill('<!ENTITY lol "&lol;&lol;">', '<!DOCTYPE x [', ']><r>&lol;</r>'), 'doctype'],
      ['entity declarations', fill('<!ENTITY a "&a;&a;">', '', '<r>&a;</r>'), 'entity'],
      ['unknown entities', fill('&lol;', '<a>', '</a>'), 'entity'],
      ['whitespace before the root', fill(' ', '', '<a/>'), undefined],
      ['over the size limit', 'x'.repeat(XML_MAX_BYTES + 1), 'too-large'],
    ];
    for (const [what, input, reason] of cases) {
      const result = parseXml(input);
      assertTyped(result, 'upnp');
      assert.equal(result instanceof ProtocolError ? result.reason : undefined, reason, what);
    }
  });
});
