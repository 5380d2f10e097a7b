"""The FPGA flow: out-of-context wrapper, Yosys/nextpnr build, timing reports."""
