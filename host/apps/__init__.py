"""Applications on the strategy: replay, demo and the golden benchmark."""
