import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

/**
 * A catch that drops the error (no binding, or a binding it never reads) must say in a comment why nothing is
 * lost: `no-empty` only catches the empty block, not `catch { return undefined; }`.
 */
const catchSaysWhy = {
  meta: {
    type: 'problem',
    messages: { why: 'This catch drops the error: say in a comment why nothing is lost, or log or count it.' },
  },
  create(context) {
    const source = context.sourceCode;
    return {
      CatchClause(node) {
        const [variable] = node.param ? source.getDeclaredVariables(node) : [];
        if (variable && variable.references.length > 0) return;
        if (source.getCommentsInside(node).length > 0) return;
        context.report({ node, messageId: 'why' });
      },
    };
  },
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', '.bench/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // The server's and the console's own code; tests and benches may drop what they do not assert on.
    files: ['src/**/*.ts', 'web/**/*.{ts,tsx}'],
    ignores: ['src/**/*.test.ts'],
    plugins: { linus: { rules: { 'catch-says-why': catchSaysWhy } } },
    rules: { 'linus/catch-says-why': 'error' },
  },
  {
    // The console's browser sources (Preact, TSX), bundled by Vite (scripts/console-build.mjs). TypeScript
    // checks names (no-undef is off for TS); the hooks rules keep effects and their dependencies honest.
    files: ['web/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
    },
  },
);
