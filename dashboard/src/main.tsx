import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { loadConfig } from './config'
import { App } from './components/App'
import { NotConfigured } from './components/Screens'
import './styles.css'

const config = loadConfig()
createRoot(document.getElementById('root')!).render(
  <StrictMode>{config.ok ? <App config={config.config} /> : <NotConfigured missing={config.missing} />}</StrictMode>,
)
