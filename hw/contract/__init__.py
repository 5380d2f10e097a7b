"""What host and device agree on: the register map, datapath widths and host-side coefficients."""
