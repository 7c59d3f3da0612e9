// Runtime configuration, loaded before the app. The host replaces this file with one that sets
// window.__VIGIL__ = { supabaseUrl, anonKey, devOperator?: { email, password } }.
// This default sets nothing, so the build falls back to VITE_SUPABASE_URL / VITE_SUPABASE_ANON_KEY.
window.__VIGIL__ = window.__VIGIL__ || undefined
