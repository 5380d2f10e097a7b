"""Testbenches: amaranth.sim support and the cocotb benches run under Verilator."""
