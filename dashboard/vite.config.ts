import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('.', import.meta.url))

// End-to-end tests drive a running dashboard in a real browser; they join the run only when
// VIGIL_TEST_DASHBOARD_URL names one, so `npm test` stays hermetic.
const e2eUrl = process.env.VIGIL_TEST_DASHBOARD_URL

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    rolldownOptions: {
      input: {
        main: resolve(root, 'index.html'),
        status: resolve(root, 'status.html'),
      },
      // Libraries in their own chunks: they change less often than the app, so they stay cached.
      output: {
        codeSplitting: {
          groups: [
            { name: 'react', test: /node_modules[\\/](react|react-dom|scheduler)[\\/]/ },
            { name: 'supabase', test: /node_modules[\\/]@supabase[\\/]/ },
          ],
        },
      },
    },
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'components',
          environment: 'jsdom',
          include: ['src/**/*.test.{ts,tsx}'],
          setupFiles: ['src/test/setup.ts'],
          env: { TZ: 'UTC' },
          restoreMocks: true,
        },
      },
      ...(e2eUrl
        ? [
            {
              test: {
                name: 'e2e',
                environment: 'node',
                include: ['e2e/**/*.test.ts'],
                testTimeout: 60_000,
                hookTimeout: 60_000,
              },
            },
          ]
        : []),
    ],
  },
})
