import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyTermMap,
  cutUtf8,
  dedupKey,
  detectLang,
  MAX_SNIPPET_BYTES,
  prepareSnippetText,
  preprocessMeetingText,
} from './text.js';

describe('meeting text preprocessing', () => {
  it('detects Chinese and English', () => {
    assert.equal(detectLang('我们今天讨论发布计划'), 'zh');
    assert.equal(detectLang('we discuss the release plan'), 'en');
    assert.equal(detectLang('我们用 Kubernetes 部署'), 'zh');
    assert.equal(detectLang('12345'), 'en');
  });

  it('collapses whitespace, removes spaces between Han characters and invisible characters', () => {
    assert.equal(preprocessMeetingText('  今天 我们   开会 \u200b\n讨论 预算  ').text, '今天我们开会讨论预算');
    assert.equal(preprocessMeetingText('hello\t\tworld\r\n again ').text, 'hello world again');
  });

  it('turns ASCII punctuation after Han characters full-width and collapses repeated marks', () => {
    assert.equal(preprocessMeetingText('好的,我们开始吧!!').text, '好的，我们开始吧！');
    assert.equal(preprocessMeetingText('结束了.').text, '结束了。');
    assert.equal(preprocessMeetingText('版本 1.5 发布').text, '版本 1.5 发布');
    assert.equal(preprocessMeetingText('wait... what?? ok').text, 'wait... what? ok');
  });

  it('folds full-width letters and digits to ASCII', () => {
    assert.equal(preprocessMeetingText('ＡＰＩ 版本２').text, 'API 版本2');
  });

  it('applies the term map: Latin keys as whole words, case-insensitively; longest key first', () => {
    const map = { 'wei xin': 'WeChat', k8s: 'Kubernetes', 小程: '小程序', 小程序: '小程序' };
    assert.equal(applyTermMap('we use Wei Xin and K8s, not k8sx', map), 'we use WeChat and Kubernetes, not k8sx');
    assert.equal(preprocessMeetingText('上线小程序', map).text, '上线小程序');
  });

  it('cuts at 2 KB without splitting a character', () => {
    const zh = '测'.repeat(1000); // 3000 bytes
    const cut = cutUtf8(zh);
    assert.ok(Buffer.byteLength(cut) <= MAX_SNIPPET_BYTES);
    assert.equal(cut, '测'.repeat(682));
    const emoji = `${'a'.repeat(2046)}😀😀`;
    assert.equal(cutUtf8(emoji), 'a'.repeat(2046));
    assert.equal(cutUtf8('short'), 'short');
    assert.ok(!prepareSnippetText('x'.repeat(5000)).includes('\uFFFD'));
    assert.equal(Buffer.byteLength(prepareSnippetText('x'.repeat(5000))), MAX_SNIPPET_BYTES);
  });

  it('dedup keys ignore case, spaces and punctuation', () => {
    assert.equal(dedupKey('Hello, World!'), dedupKey('hello world'));
    assert.equal(dedupKey('好的。'), dedupKey('好的'));
    assert.notEqual(dedupKey('好的'), dedupKey('好吗'));
  });
});
