"""nanoquote: FPGA-offload market-making quote engine."""

__version__ = "0.1.0"
