import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import { attribute, child, childText, children, escapeXml, parseXml, type XmlElement } from '../../../src/protocols/upnp/xml.js';
import { fixture } from './fixtures.js';

const ok = (xml: string): XmlElement => {
  const root = parseXml(xml);
  if (root instanceof ProtocolError) assert.fail(root.message);
  return root;
};
const reason = (xml: string, options?: Parameters<typeof parseXml>[1]): string => {
  const result = parseXml(xml, options);
  assert.ok(result instanceof ProtocolError, 'expected a ProtocolError');
  assert.equal(result.protocol, 'upnp');
  return result.reason;
};

describe('parseXml', () => {
  it('reads elements, attributes, text, and matches by local name', () => {
    const root = ok('<?xml version="1.0"?>\n<!-- c --><s:Envelope xmlns:s="urn:s" s:encodingStyle=\'x\'><s:Body><u:A xmlns:u="urn:u"><B>1</B><B>2</B><C/></u:A></s:Body></s:Envelope>');
    assert.equal(root.name, 'Envelope');
    assert.equal(root.qname, 's:Envelope');
    assert.equal(attribute(root, 'encodingStyle'), 'x');
    assert.equal(root.attributes.get('xmlns:s'), 'urn:s');
    const a = child(child(root, 'Body') as XmlElement, 'A') as XmlElement;
    assert.deepEqual(children(a, 'B').map((b) => b.text), ['1', '2']);
    assert.equal(childText(a, 'C'), '');
    assert.equal(childText(a, 'D'), undefined);
  });

  it('decodes the predefined entities, numeric references and CDATA', () => {
    const root = ok('<r a="&quot;&apos;&#x41;">&lt;&gt;&amp;&#65;&#x1F600;<![CDATA[<not & markup>]]></r>');
    assert.equal(root.text, '<>&A\u{1F600}<not & markup>');
    assert.equal(root.attributes.get('a'), '"\'A');
  });

  it('skips a BOM, processing instructions and comments', () => {
    assert.equal(ok('\uFEFF<?xml version="1.0"?><?pi x?><r><!-- <x> --></r>\n').name, 'r');
  });

  it('parses the fixtures (miniupnpd IGDv2, SOAP)', () => {
    const root = ok(fixture('igd2-miniupnpd.xml'));
    assert.equal(childText(child(root, 'device') as XmlElement, 'deviceType'), 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    assert.equal(ok(fixture('soap-generic-entry.xml')).name, 'Envelope');
  });

  it('rejects DOCTYPE, including the billion-laughs document and external entities', () => {
    assert.equal(reason(fixture('billion-laughs.xml')), 'doctype');
    assert.equal(reason(fixture('doctype-external.xml')), 'doctype');
    assert.equal(reason('<!doctype r><r/>'), 'doctype');
    assert.equal(reason('<!ENTITY x "y"><r/>'), 'entity');
  });

  it('rejects unknown and invalid entity references', () => {
    assert.equal(reason('<r>&xxe;</r>'), 'entity');
    assert.equal(reason('<r>&constructor;</r>'), 'entity');
    assert.equal(reason('<r>&#0;</r>'), 'entity');
    assert.equal(reason('<r>&#xD800;</r>'), 'entity');
    assert.equal(reason('<r>a & b</r>'), 'entity');
  });

  it('bounds nesting depth, size and element count', () => {
    const deep = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
    assert.equal(ok(deep(32)).name, 'a');
    assert.equal(reason(deep(33)), 'too-deep');
    assert.equal(reason(deep(100_000)), 'too-deep');
    assert.equal(reason(deep(5), { maxDepth: 4 }), 'too-deep');
    assert.equal(reason(`<r>${'x'.repeat(100)}</r>`, { maxBytes: 50 }), 'too-large');
    assert.equal(reason(`<r>${'<a/>'.repeat(20)}</r>`, { maxElements: 10 }), 'too-many-elements');
  });

  it('returns a typed error on malformed input, never throws', () => {
    const bad = ['', '   ', 'text', '<r>', '<r></s>', '<r><a></r></a>', '</r>', '<r/><r/>', 'x<r/>', '<r a=1/>', '<r a="1" a="2"/>',
      '<r a="<"/>', '<r a="1"b="2"/>', '<r', '<r><!-- x</r>', '<r><![CDATA[x</r>', '<1r/>', '<r><!ELEMENT r ANY></r>', '<r>&lt</r>'];
    for (const input of bad) {
      const result = parseXml(input);
      assert.ok(result instanceof ProtocolError, `expected an error for ${JSON.stringify(input)}`);
    }
    assert.equal(reason(''), 'empty');
    assert.equal(reason('<r><a></r></a>'), 'malformed');
    assert.ok(parseXml(42 as unknown as string) instanceof ProtocolError);
  });

  it('escapeXml escapes the five special characters', () => {
    assert.equal(escapeXml(`a<b>&"c"'`), 'a&lt;b&gt;&amp;&quot;c&quot;&apos;');
    assert.equal(ok(`<r>${escapeXml('<&>"\'')}</r>`).text, '<&>"\'');
  });
});
