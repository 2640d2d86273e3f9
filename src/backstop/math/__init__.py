"""Pure formulas: no clocks, no logging, no mutation. Integer money and ticks in, out."""
