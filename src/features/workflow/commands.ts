/**
 * Working-mode voice phrases (fork §2.2, §2.4), as pure functions: the mode switch ("进入工作模式",
 * "working mode"...) and the task commands (assign / complete / refresh) with an optional ordinal that picks
 * the Nth open task ("第二个", "任务三", "task 2", "second", a bare "2").
 *
 * Chinese phrases are matched on a compact form (no spaces or punctuation); English phrases on whole words.
 * A phrase may also match once the ordinal is taken out ("完成第二个任务" → "完成任务", "mark task 2 done" →
 * "mark done"). Negated forms ("还没完成", "don't claim") are not commands.
 */

export type WorkingIntent = 'assign' | 'complete' | 'refresh';

export interface WorkingCommand {
  intent: WorkingIntent;
  /** 1-based position among the open tasks, when the phrase named one. */
  ordinal?: number;
}

/** Forms of one utterance used for matching. */
interface Forms {
  zh: string;
  /** Lower-case words separated by single spaces, padded with one space on each side. */
  en: string;
}

const FILLERS = new Set(['the', 'a', 'an', 'my', 'this', 'that', 'please', 'it']);

function forms(text: string): Forms {
  const lower = text.toLowerCase();
  const zh = lower.replace(/[\s\p{P}\p{S}]/gu, '');
  const words = lower.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0);
  return { zh, en: ` ${words.join(' ')} ` };
}

/** English form without filler words, so "complete the first task" reads "complete first task". */
function withoutFillers(en: string): string {
  const words = en
    .trim()
    .split(' ')
    .filter((w) => w && !FILLERS.has(w));
  return ` ${words.join(' ')} `;
}

// ------------------------------------------------------------------ mode switch

const ENTER_ZH = ['进入工作模式', '切到工作模式', '切换到工作模式', '工作模式'];
const ENTER_EN = ['workflow mode', 'working mode', 'switch to working mode', 'enter working mode'];
const LEAVE_ZH = /(退出|离开|结束|关闭|关掉|停止|取消)工作模式/;
const LEAVE_EN = / (exit|leave|quit|stop|end|close|cancel|disable) (the )?(working|workflow) mode /;

/** True for a phrase that asks to switch INTO working mode ("退出工作模式" is not one). */
export function isWorkingModeSwitch(text: string): boolean {
  const f = forms(text);
  if (LEAVE_ZH.test(f.zh) || LEAVE_EN.test(f.en)) return false;
  return ENTER_ZH.some((p) => f.zh.includes(p)) || ENTER_EN.some((p) => f.en.includes(` ${p} `));
}

// ------------------------------------------------------------------ ordinals

const ZH_DIGITS: Record<string, number> = {
  零: 0,
  〇: 0,
  一: 1,
  二: 2,
  两: 2,
  三: 3,
  四: 4,
  五: 5,
  六: 6,
  七: 7,
  八: 8,
  九: 9,
};

/** Chinese numerals 0..99 ("三", "十", "十二", "二十", "二十三", "两"), or digits. */
export function parseChineseNumber(s: string): number | undefined {
  if (/^[0-9]{1,2}$/.test(s)) return Number(s);
  if (s.length === 1 && s in ZH_DIGITS) return ZH_DIGITS[s];
  const ten = s.indexOf('十');
  if (ten < 0 || s.indexOf('十', ten + 1) >= 0 || s.length > 3) return undefined;
  const before = s.slice(0, ten);
  const after = s.slice(ten + 1);
  const tens = before === '' ? 1 : before.length === 1 && before !== '零' ? ZH_DIGITS[before] : undefined;
  const ones = after === '' ? 0 : after.length === 1 && after !== '两' ? ZH_DIGITS[after] : undefined;
  if (tens === undefined || ones === undefined) return undefined;
  return tens * 10 + ones;
}

const EN_NUMBERS: Record<string, number> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
};
const EN_ORDINALS: Record<string, number> = {
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  sixth: 6,
  seventh: 7,
  eighth: 8,
  ninth: 9,
  tenth: 10,
};

export interface Ordinal {
  /** 1..99 */
  n: number;
  /** The utterance's forms with the ordinal taken out (for phrase matching). */
  rest: Forms[];
}

const ZH_NUM = '[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3}';
/** A numeral must not run on into a bigger one ("第一百个" is not "第一"). */
const ZH_END = '(?![0-9零〇一二两三四五六七八九十百千万])';
const ZH_ORDINAL = new RegExp(`第(${ZH_NUM})${ZH_END}(个|条|项|件|号)?`);
const ZH_NAMED = new RegExp(`(任务|工作)(?:编号|号)?(${ZH_NUM})${ZH_END}`);
const EN_NUM = `\\d{1,2}|${Object.keys(EN_NUMBERS).join('|')}`;
const EN_NAMED = new RegExp(` (task|item|number|no) (?:number |no )?(${EN_NUM}) `);
const EN_ORDINAL = new RegExp(` (${Object.keys(EN_ORDINALS).join('|')}|\\d{1,2}(?:st|nd|rd|th)) `);
const BARE = /(?<![0-9])([0-9]{1,2})(?![0-9])/;

function enNumber(s: string): number | undefined {
  if (/^\d{1,2}$/.test(s)) return Number(s);
  if (s in EN_NUMBERS) return EN_NUMBERS[s];
  if (s in EN_ORDINALS) return EN_ORDINALS[s];
  const m = /^(\d{1,2})(st|nd|rd|th)$/.exec(s);
  return m ? Number(m[1]) : undefined;
}

const cut = (s: string, start: number, length: number, pad = ''): string =>
  `${s.slice(0, start)}${pad}${s.slice(start + length)}`;

/** Finds "the Nth" in an utterance: 第N个/第N条, 任务N/工作N, task N, first…tenth, 2nd, or a bare 1–2 digit number. */
export function parseOrdinal(text: string): Ordinal | undefined {
  const f = forms(text);
  const en = withoutFillers(f.en);
  const valid = (n: number | undefined): n is number => n !== undefined && n >= 1 && n <= 99;

  let m = ZH_ORDINAL.exec(f.zh);
  if (m && valid(parseChineseNumber(m[1]!))) {
    return { n: parseChineseNumber(m[1]!)!, rest: [{ zh: cut(f.zh, m.index, m[0].length), en }] };
  }
  m = ZH_NAMED.exec(f.zh);
  if (m && valid(parseChineseNumber(m[2]!))) {
    // "完成任务一" → "完成任务" (keep the noun, drop the number).
    const numAt = m.index + m[0].length - m[2]!.length;
    return { n: parseChineseNumber(m[2]!)!, rest: [{ zh: cut(f.zh, numAt, m[2]!.length), en }] };
  }
  m = EN_NAMED.exec(en);
  if (m && valid(enNumber(m[2]!))) {
    // "complete task 2" → "complete task"; "mark task 2 done" → "mark done".
    const numAt = m.index + m[0].length - 1 - m[2]!.length;
    const keepNoun = cut(en, numAt - 1, m[2]!.length + 1);
    const dropBoth = cut(en, m.index, m[0].length, ' ');
    return {
      n: enNumber(m[2]!)!,
      rest: [
        { zh: f.zh, en: keepNoun },
        { zh: f.zh, en: dropBoth },
      ],
    };
  }
  m = EN_ORDINAL.exec(en);
  if (m && valid(enNumber(m[1]!))) {
    return { n: enNumber(m[1]!)!, rest: [{ zh: f.zh, en: cut(en, m.index, m[0].length, ' ') }] };
  }
  const bareZh = BARE.exec(f.zh);
  if (bareZh && valid(Number(bareZh[1]))) {
    const bareEn = BARE.exec(en);
    const enRest = bareEn ? cut(en, bareEn.index, bareEn[0].length).replace(/ {2,}/g, ' ') : en;
    return { n: Number(bareZh[1]), rest: [{ zh: cut(f.zh, bareZh.index, bareZh[0].length), en: enRest }] };
  }
  return undefined;
}

// ------------------------------------------------------------------ commands

interface IntentPhrases {
  intent: WorkingIntent;
  zh: string[];
  en: string[];
  negated: { zh: RegExp; en: RegExp };
}

/** In priority order: "我来做完了" is a completion, not a claim. */
const INTENTS: IntentPhrases[] = [
  {
    intent: 'complete',
    zh: ['完成任务', '标记完成', '做完了', '搞定了', '已完成', '完成工作', '办完工作', '完成了', '完成'],
    en: [
      'mark done',
      'mark as done',
      'mark task done',
      'mark task as done',
      'complete task',
      'complete',
      'done with task',
      'finish task',
      'finished task',
      'task done',
      'task is done',
    ],
    negated: {
      zh: /(没|未|不|别|不要)(有)?(能)?(完成|做完|搞定)/,
      en: / (not|never|don t|didn t|haven t|hasn t|isn t|dont|didnt|havent|hasnt|isnt) /,
    },
  },
  {
    intent: 'assign',
    zh: ['认领任务', '领取任务', '我来做', '认领', '领取', '接收', '接受', '接手', '接单'],
    en: ['assign to me', 'assign me', 'claim task', 'claim', 'take task', 'i ll take', 'i will take'],
    negated: {
      zh: /(没|不|别|不要)(想)?(要)?(认领|领取|接收|接受|接手|接单|来做)/,
      en: / (not|never|don t|dont|won t|wont) /,
    },
  },
  {
    intent: 'refresh',
    zh: ['刷新列表', '刷新任务', '拉取任务', '刷新', '更新列表'],
    en: ['update list', 'pull', 'refresh', 'refresh list', 'reload', 'update tasks', 'show tasks', 'list tasks'],
    negated: { zh: /(不|别|不要)(用)?(刷新|拉取|更新)/, en: / (don t|dont) / },
  },
];

/** Parses a working-mode command; undefined when the utterance is not one (it then goes to the LLM). */
export function parseWorkingCommand(text: string): WorkingCommand | undefined {
  const base = forms(text);
  const all: Forms[] = [base, { zh: base.zh, en: withoutFillers(base.en) }];
  const ordinal = parseOrdinal(text);
  if (ordinal) all.push(...ordinal.rest);
  for (const spec of INTENTS) {
    const hit = all.some((f) => spec.zh.some((p) => f.zh.includes(p)) || spec.en.some((p) => f.en.includes(` ${p} `)));
    if (!hit) continue;
    if (spec.negated.zh.test(base.zh) || spec.negated.en.test(base.en)) return undefined;
    return { intent: spec.intent, ...(ordinal ? { ordinal: ordinal.n } : {}) };
  }
  return undefined;
}
