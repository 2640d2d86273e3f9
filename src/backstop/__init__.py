"""backstop: a clearing and risk engine for perpetual futures, modelled on OKX."""
