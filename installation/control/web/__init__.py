"""The web: one aiohttp server on its own thread for OSCQuery, the panel and the status page (`server`,
`serving`), one WebSocket client (`session`), the OSCQuery tree (`oscquery`), who may connect (`guard`),
the web as a control surface (`surface`) and zeroconf (`advertise`). docs/security.md says what holds."""
