"""TSFmicro companion package."""
