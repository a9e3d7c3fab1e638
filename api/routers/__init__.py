"""HTTP routes, one module per area: ask/search, documents, chat, health, pages."""
