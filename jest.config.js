/** Two projects: `unit` (beside the code, seconds) and `integration` (test/, real servers). */
const transform = { '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const moduleNameMapper = { '^@meridian/([a-z-]+)$': '<rootDir>/packages/$1/src' };
module.exports = {
  // Integration suites run real servers; never let a stray handle keep CI waiting.
  forceExit: true,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: ['<rootDir>/packages'],
      testMatch: ['**/src/**/*.test.ts'],
      transform,
      moduleNameMapper,
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      transform,
      moduleNameMapper,
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/helpers/jest-timeout.ts'],
    },
  ],
};
