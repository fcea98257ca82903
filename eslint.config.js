import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // The server's own code; tests and benches may drop what they do not assert on.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    plugins: { linus: { rules: { 'catch-says-why': catchSaysWhy } } },
    rules: { 'linus/catch-says-why': 'error' },
  },
  {
    // The console's browser modules (served as they are, no build step).
    files: ['web/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        Node: 'readonly',
        EventSource: 'readonly',
        URLSearchParams: 'readonly',
        Blob: 'readonly',
        confirm: 'readonly',
        HashChangeEvent: 'readonly',
        navigator: 'readonly',
        WebSocket: 'readonly',
        AudioContext: 'readonly',
        AudioEncoder: 'readonly',
        AudioDecoder: 'readonly',
        AudioData: 'readonly',
        EncodedAudioChunk: 'readonly',
        performance: 'readonly',
      },
    },
  },
);
