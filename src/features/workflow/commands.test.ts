import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWorkingModeSwitch, parseChineseNumber, parseOrdinal, parseWorkingCommand } from './commands.js';

describe('working mode switch phrases', () => {
  it('recognizes every phrase of the fork, in Chinese and English, with punctuation and case', () => {
    for (const p of [
      '进入工作模式',
      '工作模式',
      '切到工作模式',
      '切换到工作模式',
      '请切换到工作模式。',
      'workflow mode',
      'Working mode',
      'switch to working mode',
      'Enter working mode!',
      'please enter the working mode',
    ]) {
      assert.equal(isWorkingModeSwitch(p), true, p);
    }
  });

  it('does not switch on leaving phrases or unrelated text', () => {
    for (const p of [
      '退出工作模式',
      '结束工作模式',
      'exit working mode',
      'leave the working mode',
      '今天天气怎么样',
      'work hard',
      'mode',
    ]) {
      assert.equal(isWorkingModeSwitch(p), false, p);
    }
  });
});

describe('Chinese numbers', () => {
  it('parses 1..99 and refuses the rest', () => {
    const cases: [string, number | undefined][] = [
      ['一', 1],
      ['两', 2],
      ['九', 9],
      ['十', 10],
      ['十一', 11],
      ['二十', 20],
      ['二十三', 23],
      ['九十九', 99],
      ['7', 7],
      ['42', 42],
      ['一一', undefined],
      ['十十', undefined],
      ['零十', undefined],
      ['十两', undefined],
      ['abc', undefined],
      ['一百', undefined],
    ];
    for (const [s, n] of cases) assert.equal(parseChineseNumber(s), n, s);
  });
});

describe('ordinals', () => {
  const cases: [string, number | undefined][] = [
    ['第一个', 1],
    ['第2个', 2],
    ['第三条', 3],
    ['完成第十二条任务', 12],
    ['任务一', 1],
    ['工作三', 3],
    ['完成任务2', 2],
    ['task 2', 2],
    ['Task number 4', 4],
    ['task two', 2],
    ['the first task', 1],
    ['tenth', 10],
    ['3rd task', 3],
    ['2', 2],
    ['完成 7', 7],
    ['完成任务', undefined],
    ['task', undefined],
    ['第零个', undefined],
    ['100', undefined],
    ['第一百个', undefined],
  ];
  for (const [text, n] of cases) {
    it(`${JSON.stringify(text)} → ${String(n)}`, () => assert.equal(parseOrdinal(text)?.n, n));
  }
});

describe('working-mode commands', () => {
  const cases: [string, ReturnType<typeof parseWorkingCommand>][] = [
    // assign
    ['认领任务', { intent: 'assign' }],
    ['领取任务', { intent: 'assign' }],
    ['我来做', { intent: 'assign' }],
    ['我来做第二个', { intent: 'assign', ordinal: 2 }],
    ['认领第三个任务', { intent: 'assign', ordinal: 3 }],
    ['接手工作', { intent: 'assign' }],
    ['接单', { intent: 'assign' }],
    ['Assign to me', { intent: 'assign' }],
    ['claim task 3', { intent: 'assign', ordinal: 3 }],
    ['claim the first task', { intent: 'assign', ordinal: 1 }],
    // complete
    ['完成任务', { intent: 'complete' }],
    ['完成任务一', { intent: 'complete', ordinal: 1 }],
    ['完成第二个任务', { intent: 'complete', ordinal: 2 }],
    ['标记完成', { intent: 'complete' }],
    ['第3条标记完成', { intent: 'complete', ordinal: 3 }],
    ['做完了', { intent: 'complete' }],
    ['搞定了！', { intent: 'complete' }],
    ['已完成', { intent: 'complete' }],
    ['办完工作', { intent: 'complete' }],
    ['我来做完了', { intent: 'complete' }],
    ['mark done', { intent: 'complete' }],
    ['Mark task 2 done.', { intent: 'complete', ordinal: 2 }],
    ['complete task 2', { intent: 'complete', ordinal: 2 }],
    ['complete the second task', { intent: 'complete', ordinal: 2 }],
    ['complete 5', { intent: 'complete', ordinal: 5 }],
    // refresh
    ['刷新列表', { intent: 'refresh' }],
    ['刷新任务', { intent: 'refresh' }],
    ['拉取任务', { intent: 'refresh' }],
    ['刷新', { intent: 'refresh' }],
    ['更新列表', { intent: 'refresh' }],
    ['update list', { intent: 'refresh' }],
    ['Pull', { intent: 'refresh' }],
    // not commands
    ['今天天气怎么样', undefined],
    ['what is the weather', undefined],
    ['我还没完成', undefined],
    ['任务还未完成', undefined],
    ["I haven't finished, not done", undefined],
    ['我不接受', undefined],
    ["don't claim it", undefined],
    ['pullover', undefined],
    ['2', undefined],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text)} → ${JSON.stringify(expected)}`, () =>
      assert.deepEqual(parseWorkingCommand(text), expected));
  }
});
