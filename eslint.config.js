// ESLint flat config: typescript-eslint's type-aware rules (STYLE.md convention 11) and the layer
// rule (ARCHITECTURE.md §3 "Layers", README "Layers").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import boundaries from 'eslint-plugin-boundaries';

// The folders of src/ by layer, each list from top to bottom. A folder may import a folder of a
// lower layer, or of its own layer when that folder comes later in the list; never one above it.
// So the folder-level import graph is ordered and cannot hold a cycle.
// - Front ends are peers and never import one another: what two of them share belongs in the core.
// - Core, in the order they may depend on one another: the lifecycle job drives publication and the
//   registry; delivery hands mail to the relay; routing decides from auth's access vocabulary; auth
//   resolves rights kept by the registry; publication publishes registry mailboxes; the directory
//   mirrors national data; store (Dovecot) and redis are the backends, at the bottom.
// - Base: observability uses the clock; config, pki and shared (clock, process supervision, address
//   and domain parsing) only the error catalogue.
const LAYERS = {
  front: ['smtp', 'imap', 'admin', 'portal'],
  core: [
    'lifecycle',
    'delivery',
    'relay',
    'routing',
    'auth',
    'publication',
    'registry',
    'directory',
    'store',
    'redis',
  ],
  base: ['observability', 'config', 'pki', 'shared', 'errors'],
};

/**
 * Files other folders may import besides index.ts, each for a command that must start fast (issue
 * #16: a CLI command in 0.3 s): auth's index brings jose, the token verifier and pki/ with
 * node-forge, ~30 ms of CPU that `mssgw dev-token` never uses; the development issuer needs only
 * node:crypto, errors/ and shared/.
 */
const LIGHT_SURFACES = ['src/auth/dev-issuer.ts'];

/** The folders `folder` may import: lower layers, and later folders of its own layer except front ends. */
function importableFrom(layer, folder) {
  const order = ['front', 'core', 'base'];
  const own = LAYERS[layer];
  const sameLayer = layer === 'front' ? [] : own.slice(own.indexOf(folder) + 1);
  return [...sameLayer, ...order.slice(order.indexOf(layer) + 1).flatMap((l) => LAYERS[l])];
}

const layerPolicies = Object.entries(LAYERS).flatMap(([layer, folders]) =>
  folders.map((folder) => ({
    from: { element: { type: folder } },
    // Only through the folder's public surface, its index.ts (STYLE.md convention 2), or one of the
    // few lighter surfaces listed in LIGHT_SURFACES.
    allow: {
      to: {
        element: { types: { anyOf: importableFrom(layer, folder) } },
        file: { path: ['src/*/index.ts', ...LIGHT_SURFACES] },
      },
    },
  })),
);

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
    // The layer rule covers src/ only: tests, benchmarks and scripts may reach any file. The
    // composition root (src/app/) and the process entry (src/main.ts) import across freely.
    files: ['src/**/*.ts'],
    ignores: ['src/main.ts'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { typescript: { project: 'tsconfig.json' } },
      'boundaries/elements': [
        { type: 'app', pattern: 'src/app' },
        ...Object.values(LAYERS)
          .flat()
          .map((folder) => ({ type: folder, pattern: `src/${folder}` })),
      ],
    },
    rules: {
      'boundaries/dependencies': [
        'error',
        {
          default: 'disallow',
          policies: [
            { from: { element: { type: 'app' } }, allow: { to: { element: { isUnknown: false } } } },
            // Files of one folder import one another freely.
            { allow: { dependency: { relationship: { to: 'internal' } } } },
            ...layerPolicies,
          ],
        },
      ],
      // Every file of src/ belongs to a folder of a layer or to the composition root.
      'boundaries/no-unknown-files': 'error',
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
