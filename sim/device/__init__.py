"""The software device: the register file and quote path in Python."""
