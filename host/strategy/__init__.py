"""The golden market-making strategy: config, quoting, orders, P&L and risk."""
