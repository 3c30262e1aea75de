// Flat config: typescript-eslint's type-aware recommended rules over everything we ship.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'var/**', '.tap/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only src/config reads the environment; pass settings down.' }],
      // Node 20's V8 keeps an object literal with a getter or setter, and all it holds, alive
      // through every young-generation collection until a mark-compact (bench/PROFILE.md,
      // release 15): the ESL connection's counters kept every call alive that way.
      'no-restricted-syntax': ['error', {
        selector: "ObjectExpression > Property[kind='get'], ObjectExpression > Property[kind='set']",
        message: 'No getters or setters in object literals: V8 keeps such an object and what it holds past the young generation (bench/PROFILE.md, release 15). Use a class with the accessor on its prototype.',
      }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/config/**', 'test/**', 'bench/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // node-tap tracks its subtests itself (t.test returns a promise nobody needs to await), and
    // test callbacks are async by convention whether or not they await.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The click-to-call widget runs in visitors' browsers (plain ES5-style script, no modules).
    files: ['web/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', fetch: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
  },
);
