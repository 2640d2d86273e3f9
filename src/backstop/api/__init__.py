"""The OKX v5 compatible REST and WebSocket face of the engine (``backstop serve``)."""
