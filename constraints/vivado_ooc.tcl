# nanoquote: out-of-context implementation in Vivado (documented, not run here).
#
#   nanoquote build --no-bitstream          # writes build/ecp5/nanoquote_ooc.v
#   vivado -mode batch -source constraints/vivado_ooc.tcl -tclargs build/ecp5/nanoquote_ooc.v
#
# Reports land in build/vivado/: timing_summary.rpt (WNS at the XDC's clock) and
# utilization.rpt.
set verilog [lindex $argv 0]
set part    [expr {[llength $argv] > 1 ? [lindex $argv 1] : "xczu9eg-ffvb1156-2-e"}]
set here    [file dirname [info script]]
file mkdir build/vivado

read_verilog $verilog
read_xdc -mode out_of_context [file join $here nanoquote_ooc_zynqmp.xdc]
synth_design -top nanoquote_ooc -part $part -mode out_of_context
opt_design
place_design
phys_opt_design
route_design
report_timing_summary -file build/vivado/timing_summary.rpt
report_utilization    -file build/vivado/utilization.rpt
