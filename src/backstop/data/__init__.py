"""Real market data on demand: Binance's public archive (``backstop data download``)."""
