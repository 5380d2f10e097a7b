"""Amaranth gateware: the quote pipeline, its stages, the register block and the top level."""
