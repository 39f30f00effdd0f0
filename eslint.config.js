// ESLint flat config: typescript-eslint's type-aware rules (STYLE.md convention 11).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'var/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: { 'no-console': 'off' },
  },
  {
    // STYLE.md convention 5: every error comes from the catalogue (src/errors/), and nothing decides
    // on an error's message text.
    files: ['src/**/*.ts'],
    ignores: ['src/errors/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'NewExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError)$/], ' +
            'CallExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError)$/]',
          message: 'Throw a GatewayError with a code from the catalogue (src/errors/), not a bare Error.',
        },
        {
          selector:
            'ClassDeclaration[superClass.name=/^(Error|TypeError|RangeError|SyntaxError)$/], ' +
            'ClassExpression[superClass.name=/^(Error|TypeError|RangeError|SyntaxError)$/]',
          message: 'Extend GatewayError (src/errors/) so the error carries a catalogue code.',
        },
        {
          selector:
            "BinaryExpression[operator=/^[!=]==?$/] > MemberExpression[property.name='message'], " +
            "BinaryExpression[operator=/^[!=]==?$/] > ChainExpression > MemberExpression[property.name='message'], " +
            "CallExpression[callee.property.name=/^(startsWith|endsWith|includes|match)$/] > MemberExpression.callee > MemberExpression.object[property.name='message'], " +
            "CallExpression[callee.property.name=/^(test|exec)$/] > MemberExpression.arguments[property.name='message']",
          message: "Never decide on an error's message text: use its code, class or our own state.",
        },
      ],
    },
  },
  {
    files: ['src/admin/cli*.ts', 'bench/**/*.ts', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  prettier,
);
