## nanoquote: out-of-context timing constraints for a Xilinx UltraScale+ part.
##
## Documented, not run here (Vivado is not part of this project's toolchain). The design
## is the same five-pin wrapper `nanoquote build` uses for the ECP5 (nanoquote.hw.ooc:
## every port of the quote engine registered, inputs through a shift register, outputs
## folded into a serial signature register), written by
##     nanoquote build --no-bitstream ...   ->   build/ecp5/nanoquote_ooc.v
## Reference part: xczu9eg-ffvb1156-2-e (Zynq UltraScale+ MPSoC, ZCU102), where the
## AXI4-Lite register block would hang off the PS (M_AXI_HPM0_LPD). Any UltraScale+
## part works: only the clock period and the false paths below matter out of context.
## constraints/vivado_ooc.tcl runs synthesis, placement and routing with this file.

## Core clock. 4.000 ns = 250 MHz, the project's stretch goal; UltraScale+ -2 parts
## have headroom beyond it (3.103 ns = 322.27 MHz is the 100G CMAC user clock).
create_clock -name clk -period 4.000 [get_ports clk]

## rst_n is an asynchronous pushbutton, synchronised by two flip-flops in the wrapper.
set_false_path -from [get_ports rst_n]

## si/so only keep the engine's ports alive for the measurement: not timed.
set_false_path -from [get_ports si]
set_false_path -to [get_ports so]

## In context (a real board), add the clock's PACKAGE_PIN/IOSTANDARD (or take the clock
## from an MMCM or the PS) and replace the false paths by the board's I/O timing.
